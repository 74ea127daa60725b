# Benchmark helpers (make bench runs bench/run.sh).
ALL_TARGETS += $(BUILD)/bench/bare-http

$(BUILD)/bench/bare-http: $(BUILD)/bench/bare-http.o
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(call pkg_libs,libmicrohttpd)

# The C client of bench/bench-memslot-rest.sh: REST create+delete vs the raw ioctls, interleaved.
ALL_TARGETS += $(BUILD)/bench/memslot-rest

$(BUILD)/bench/memslot-rest: $(BUILD)/bench/memslot-rest.o
	$(CC) $(LDFLAGS_ALL) -o $@ $^

# The process-to-process floor (same CPU, across CPUs) that bench-memslot-rest.sh prints first.
ALL_TARGETS += $(BUILD)/bench/ipc-roundtrip

$(BUILD)/bench/ipc-roundtrip: $(BUILD)/bench/ipc-roundtrip.o
	$(CC) $(LDFLAGS_ALL) -o $@ $^
