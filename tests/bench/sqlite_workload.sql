-- The real workload of `make bench` (scripts/bench.sh): Debian's sqlite3
-- building, indexing, querying and rewriting a 100 000-row table in memory.
-- .timer prints each statement's time; the script sums them, so neither
-- sqlite3's start nor a tracer's attach is counted.
.timer on
CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v BLOB);
INSERT INTO t(k, v)
  WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000)
  SELECT hex(randomblob(16)), randomblob(100 + abs(random()) % 400) FROM c;
CREATE INDEX t_k ON t(k);
SELECT count(*), sum(length(v)) FROM t WHERE k > '8';
UPDATE t SET v = randomblob(50 + abs(random()) % 1000) WHERE id % 3 = 0;
DELETE FROM t WHERE id % 5 = 0;
SELECT substr(k, 1, 1) AS p, count(*) FROM t GROUP BY p ORDER BY 2 DESC LIMIT 3;
SELECT group_concat(k) IS NOT NULL FROM (SELECT k FROM t ORDER BY v LIMIT 50000);
