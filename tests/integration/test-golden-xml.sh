#!/bin/bash
# Golden tests of the libvirt domain XML mapping (tests/golden/xml/):
#   NAME.xml      input domain XML (NAME.strict.xml: imported with --strict)
#   NAME.json     expected import result: {"spec","warnings"} or {"status","error"}
#   NAME.out.xml  expected export of that spec (nested feature vmx), when the import succeeds
# Each export is also imported again (same spec, no warnings) and checked with virt-xml-validate.
# UPDATE_GOLDEN=1 rewrites the expected files from the current output.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$top/$BUILD ;; esac
tool=$BUILD/tests/domain-xml-tool
dir=$top/tests/golden/xml
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; shift; for l in "$@"; do echo "# $l"; done; failed=1; }

if [ ! -x "$tool" ]; then
        not_ok golden-tool "$tool is missing; run make"
        exit 1
fi
have_validate=0
command -v virt-xml-validate >/dev/null && have_validate=1

compare() { # name, expected file, actual file
        if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then
                cp "$3" "$2"
        fi
        if [ ! -f "$2" ]; then
                not_ok "$1" "missing golden file ${2#"$top"/} (UPDATE_GOLDEN=1 writes it)"
        elif diff -u "$2" "$3" >"$tmp/diff"; then
                ok "$1"
        else
                mapfile -t lines < <(head -n 40 "$tmp/diff")
                not_ok "$1" "${lines[@]}"
        fi
}

for input in "$dir"/*.xml; do
        case "$input" in *.out.xml) continue ;; esac
        name=$(basename "$input" .xml)
        flags=()
        case "$name" in *.strict) flags=(--strict) ;; esac
        "$tool" import "${flags[@]}" "$input" >"$tmp/$name.json" 2>"$tmp/$name.err"
        rc=$?
        compare "import/$name" "$dir/$name.json" "$tmp/$name.json"
        [ "$rc" -eq 0 ] || continue

        python3 -c 'import json,sys; json.dump(json.load(open(sys.argv[1]))["spec"], open(sys.argv[2], "w"))' \
                "$tmp/$name.json" "$tmp/$name.spec.json"
        if ! "$tool" export --nested-feature vmx "$tmp/$name.spec.json" >"$tmp/$name.out.xml" 2>"$tmp/$name.err"; then
                not_ok "export/$name" "$(cat "$tmp/$name.err")"
                continue
        fi
        compare "export/$name" "$dir/$name.out.xml" "$tmp/$name.out.xml"

        "$tool" import "$tmp/$name.out.xml" >"$tmp/$name.again.json" 2>&1
        if python3 - "$tmp/$name.json" "$tmp/$name.again.json" <<'PY'
import json, sys
first, again = (json.load(open(p)) for p in sys.argv[1:3])
if "spec" not in again:
    sys.exit("re-import failed: %s" % json.dumps(again.get("error")))
if again["spec"] != first["spec"]:
    sys.exit("re-imported spec differs:\n%s\n%s" % (json.dumps(first["spec"]), json.dumps(again["spec"])))
if again["warnings"]:
    sys.exit("re-import warns: %s" % json.dumps(again["warnings"]))
PY
        then
                ok "roundtrip/$name"
        else
                not_ok "roundtrip/$name" "see above"
        fi

        if [ "$have_validate" = 1 ]; then
                if virt-xml-validate "$tmp/$name.out.xml" domain >"$tmp/validate.log" 2>&1; then
                        ok "virt-xml-validate/$name"
                else
                        mapfile -t lines <"$tmp/validate.log"
                        not_ok "virt-xml-validate/$name" "${lines[@]}"
                fi
        else
                echo "skip - virt-xml-validate/$name: virt-xml-validate (libvirt-clients) is not installed"
        fi
done
exit $failed
