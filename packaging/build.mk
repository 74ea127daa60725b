# make deb: build/deb/kvmfleet_<version>_amd64.deb (dpkg-buildpackage + debhelper, lintian clean).
# DEB_VERSION overrides the version (the upgrade test builds two).
# make check-slow: the package, Ansible and other slow checks (tests/slow), also run by .ci/run.
DEB_VERSION ?= $(VERSION)

.PHONY: deb check-slow
deb:
	@packaging/build-deb.sh $(BUILD) $(DEB_VERSION)

check-slow: deps
	@$(MAKE) --no-print-directory build-all
	@BUILD=$(BUILD) tests/run-tests.sh slow
