-- 0007's hash index on label_sets (alertname) made every new label set pay for all the earlier
-- ones of its alertname: alertnames are few (tens to hundreds) and label sets many, and a hash
-- index keeps equal keys in one bucket whose overflow pages an insert walks. Measured on 316,720
-- label sets of one alertname: hash index inserts were 22 % of PostgreSQL's CPU per flush
-- (perf: _hash_doinsert → _hash_getbuf), the most of any step.
--
-- A btree keeps equal keys in TID order (new entries go to the end of their run) and deduplicates
-- them. Its key is the first 512 characters: at most 2,048 bytes, under a btree entry's ~2,700
-- (the reason 0007 left the btree on the whole value). The alertname="x" matcher compares that
-- prefix, then the whole value (history/sql.py).
DROP INDEX label_sets_alertname;
CREATE INDEX label_sets_alertname ON label_sets (left(alertname, 512));
