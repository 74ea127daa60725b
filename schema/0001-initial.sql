-- kvmfleet inventory, version 1. Never edit once released: add a new NNNN-name.sql instead.

CREATE TABLE host (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        hostname TEXT NOT NULL,
        machine_id TEXT,
        first_seen TEXT NOT NULL,
        last_start TEXT NOT NULL,
        agent_version TEXT NOT NULL
);

-- Reports written by kvmfleet-load, as ingested by the agent (newest last).
CREATE TABLE kvm_setup (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ingested_at TEXT NOT NULL,
        generated_at TEXT,
        ok INTEGER NOT NULL,
        consistent INTEGER,
        params_in_effect INTEGER,
        report TEXT NOT NULL CHECK (json_valid(report))
);

CREATE TABLE vms (
        uuid TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL CHECK (state IN ('defined', 'starting', 'running', 'paused', 'stopping', 'stopped', 'crashed')),
        spec TEXT NOT NULL CHECK (json_valid(spec)),
        vmm_pid INTEGER,
        vmm_start_time INTEGER,        -- /proc/PID/stat starttime, guards against pid reuse
        vmm_socket TEXT,
        exit_reason TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
);

CREATE TABLE memslots (
        vm_uuid TEXT NOT NULL REFERENCES vms(uuid) ON DELETE CASCADE,
        as_id INTEGER NOT NULL DEFAULT 0,
        slot INTEGER NOT NULL,
        gpa INTEGER NOT NULL,
        size INTEGER NOT NULL,
        flags_dirty_log INTEGER NOT NULL DEFAULT 0,
        flags_readonly INTEGER NOT NULL DEFAULT 0,
        backing TEXT NOT NULL,
        backing_offset INTEGER NOT NULL DEFAULT 0,
        role TEXT NOT NULL CHECK (role IN ('ram', 'user')),
        state TEXT NOT NULL,
        PRIMARY KEY (vm_uuid, as_id, slot)
);

-- Append-only audit log: who did what, when, with which result.
CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time TEXT NOT NULL,
        actor TEXT NOT NULL,
        object TEXT NOT NULL,
        action TEXT NOT NULL,
        result TEXT NOT NULL,
        detail TEXT CHECK (detail IS NULL OR json_valid(detail))
);
CREATE INDEX events_object ON events(object);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
        SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
        SELECT RAISE(ABORT, 'events are append-only');
END;
