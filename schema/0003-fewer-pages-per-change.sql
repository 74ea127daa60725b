-- kvmfleet inventory, version 3: fewer pages written per memslot change and per event. With WAL,
-- every page a transaction changes is appended to the log, so the page count is most of a small
-- write's cost.
-- memslots: the primary key is the table (WITHOUT ROWID) instead of a rowid table plus an index.
-- events: a plain INTEGER PRIMARY KEY instead of AUTOINCREMENT, whose sqlite_sequence row was one
-- more page per event. Rows are never deleted (the triggers refuse it), so ids still only grow.

CREATE TABLE memslots_v3 (
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
) WITHOUT ROWID;
INSERT INTO memslots_v3 SELECT vm_uuid, as_id, slot, gpa, size, flags_dirty_log, flags_readonly, backing,
        backing_offset, role, state FROM memslots;
DROP TABLE memslots;
ALTER TABLE memslots_v3 RENAME TO memslots;

CREATE TABLE events_v3 (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        actor TEXT NOT NULL,
        object TEXT NOT NULL,
        action TEXT NOT NULL,
        result TEXT NOT NULL,
        detail TEXT CHECK (detail IS NULL OR json_valid(detail))
);
INSERT INTO events_v3 SELECT id, time, actor, object, action, result, detail FROM events;
DROP TRIGGER events_no_update;
DROP TRIGGER events_no_delete;
DROP INDEX events_object;
DROP TABLE events;
DELETE FROM sqlite_sequence WHERE name = 'events';
ALTER TABLE events_v3 RENAME TO events;
CREATE INDEX events_object ON events(object);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
        SELECT RAISE(ABORT, 'events are append-only');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
        SELECT RAISE(ABORT, 'events are append-only');
END;
