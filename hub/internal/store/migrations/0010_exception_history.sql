-- Each exception's history: its first raise, every reopening and every change of state, with
-- who, when, from and to, and the comment. Repeats coalesced into a live exception add no row
-- (they are its count and last_seen), so an agent cannot flood it; every other row follows an
-- operator's action.
CREATE TABLE exception_history (
	id           {{id}},
	exception_id bigint NOT NULL REFERENCES exceptions(id) ON DELETE CASCADE,
	at           {{time}} NOT NULL,
	actor        text NOT NULL,
	action       text NOT NULL,
	from_state   text NOT NULL,
	to_state     text NOT NULL,
	comment      text NOT NULL
);
CREATE INDEX exception_history_of ON exception_history (exception_id, id);
-- What is known of the exceptions already raised: when, and their last change.
INSERT INTO exception_history (exception_id, at, actor, action, from_state, to_state, comment)
	SELECT id, created_at, 'hub', 'raised', '', 'open', '' FROM exceptions;
INSERT INTO exception_history (exception_id, at, actor, action, from_state, to_state, comment)
	SELECT id, updated_at, updated_by, 'changed', '', state, comment FROM exceptions WHERE updated_by <> '';
