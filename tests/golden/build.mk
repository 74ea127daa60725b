# tests/golden: domain-xml-tool drives agent/domain-xml.c for tests/integration/test-golden-xml.sh and
# test_libvirt_xml.py.
DOMAIN_XML_OBJS := $(BUILD)/agent/domain-xml.o $(BUILD)/vmm/spec.o
ALL_TARGETS += $(BUILD)/tests/domain-xml-tool
$(BUILD)/tests/domain-xml-tool: $(BUILD)/tests/golden/domain-xml-tool.o $(DOMAIN_XML_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $(filter %.o,$^) $(LIB_A) $(call pkg_libs,json-c libxml-2.0)

UNIT_TESTS += $(BUILD)/tests/test-domain-xml
$(BUILD)/tests/test-domain-xml: $(DOMAIN_XML_OBJS)
EXTRA_LIBS_domain-xml := $(call pkg_libs,libxml-2.0)
