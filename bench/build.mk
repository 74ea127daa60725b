# Benchmark helpers (make bench runs bench/run.sh).
ALL_TARGETS += $(BUILD)/bench/bare-http

$(BUILD)/bench/bare-http: $(BUILD)/bench/bare-http.o
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(call pkg_libs,libmicrohttpd)
