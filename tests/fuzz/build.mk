# tests/fuzz: libFuzzer target for the domain XML mapping, built with clang outside the normal build.
#   make fuzz                run it for FUZZ_TIME seconds (default 600) on the golden inputs and its corpus
# tests/integration/test-fuzz-xml.sh runs a bounded run as part of make check.
FUZZ_CC ?= clang
FUZZ_TIME ?= 600
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer -D_GNU_SOURCE -DKVMFLEET_VERSION='"$(VERSION)"' -I. -Ilib $(PKG_CFLAGS)
FUZZ_DOMAIN_XML_SRCS := tests/fuzz/fuzz-domain-xml.c agent/domain-xml.c vmm/spec.c $(LIB_SRCS)

$(BUILD)/fuzz/fuzz-domain-xml: $(FUZZ_DOMAIN_XML_SRCS) $(wildcard agent/domain-xml.h vmm/spec.h lib/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_DOMAIN_XML_SRCS) $(call pkg_libs,json-c libxml-2.0)

.PHONY: fuzz
fuzz: $(BUILD)/fuzz/fuzz-domain-xml
	@mkdir -p $(BUILD)/fuzz/corpus-domain-xml
	tests/fuzz/seed-corpus.sh $(BUILD)/fuzz/corpus-domain-xml
	$(BUILD)/fuzz/fuzz-domain-xml -max_total_time=$(FUZZ_TIME) -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
		-dict=tests/fuzz/domain-xml.dict -artifact_prefix=$(BUILD)/fuzz/ $(BUILD)/fuzz/corpus-domain-xml
