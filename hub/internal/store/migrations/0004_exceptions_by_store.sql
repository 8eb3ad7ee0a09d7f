-- The exception queue is read per store and state (the API's filters, the console's store
-- page); without this index each such read scans every exception of the fleet.
CREATE INDEX exceptions_store ON exceptions (store, state, id);
