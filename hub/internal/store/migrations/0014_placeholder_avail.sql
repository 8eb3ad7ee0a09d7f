-- PLACEHOLDER on branch channels only: number 0014 belongs to the availability engine (branch
-- avail). Delete this file when merging avail's 0014 so the numbering stays contiguous.
SELECT 1;
