#!/bin/bash
# kvmfleetctl(1) and the bash completion against the real `kvmfleetctl --help`: every command the
# CLI lists is documented in the man page with each of its options, and the completion offers
# every command word and option.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/${BUILD:-build}
man=$top/docs/man/kvmfleetctl.1.scd
comp=$top/packaging/completion/kvmfleetctl
failed=0
result() { # status name [details...]
        local st=$1 name=$2
        shift 2
        if [ "$st" -eq 0 ]; then
                echo "ok - $name"
        else
                [ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/#   /'
                echo "not ok - $name"
                failed=1
        fi
}
help=$("$build/kvmfleetctl" --help)
# "  vm stop VM [--timeout S] [--force]   stop: ..." -> words before the first argument, then options
commands=$(echo "$help" | sed -n '/^Commands:/,/^$/p' | grep '^  [a-z]')
[ -n "$commands" ]
result $? help_lists_commands "$help"

missing=()
while IFS= read -r line; do
        usage=$(echo "$line" | sed -E 's/^  //; s/ {2,}.*//') # the usage column ends at a run of spaces
        words=$(echo "$usage" | awk '{ w = $1; if ($2 ~ /^[a-z][a-z-]*$/) w = w " " $2; print w }')
        grep -qF "*$words*" "$man" || missing+=("command '$words'")
        for opt in $(echo "$usage" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
                grep -qF -- "*$opt*" "$man" || missing+=("$words $opt")
        done
done <<<"$commands"
[ ${#missing[@]} -eq 0 ]
result $? manpage_covers_every_command_and_option "missing in $man: ${missing[*]:-}"

if [ ! -f /usr/share/bash-completion/bash_completion ]; then
        echo "skip - completion_offers_every_command_and_option: bash-completion is not installed"
        exit $failed
fi
# Runs the completion function on a command line (the last word is being completed).
complete_line() {
        bash -c '
                . /usr/share/bash-completion/bash_completion
                . "$1"
                read -r -a COMP_WORDS <<<"$2"
                [[ $2 == *" " ]] && COMP_WORDS+=("")
                COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
                COMP_LINE=$2 COMP_POINT=${#2}
                _kvmfleetctl kvmfleetctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                printf "%s\n" "${COMPREPLY[@]}"
        ' _ "$comp" "$1"
}
missing=()
while IFS= read -r line; do
        usage=$(echo "$line" | sed -E 's/^  //; s/ {2,}.*//')
        read -r group verb _ <<<"$usage"
        complete_line "kvmfleetctl " | grep -qx "$group" || missing+=("group $group")
        if [[ $verb =~ ^[a-z][a-z-]*$ ]]; then
                complete_line "kvmfleetctl $group " | grep -qx "$verb" || missing+=("$group $verb")
        else
                verb=
        fi
        for opt in $(echo "$usage" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
                complete_line "kvmfleetctl $group ${verb:+$verb }--" | grep -qx -- "$opt" || missing+=("$group $verb $opt")
        done
done <<<"$commands"
[ ${#missing[@]} -eq 0 ]
result $? completion_offers_every_command_and_option "not offered: ${missing[*]:-}"
exit $failed
