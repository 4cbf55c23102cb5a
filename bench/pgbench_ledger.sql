-- pgbench-ledger: the ledger's transfer as plain SQL, the fastest this server does it.
-- Variables from the command line: -D minid=<first wallet id> -D n=<number of wallets>.
-- Lock both accounts in id order and read them (one statement), check the debit side's available
-- balance, insert the transfer, insert its two entries (hash chains computed by the server in the
-- ledger's own format, actor, reason and reference included, so that the books still verify),
-- update both accounts' totals and chain heads.
\set a :minid + random(0, :n - 1)
\set d random(1, :n - 1)
\set b :minid + (:a - :minid + :d) % :n
\set amt random(1, 10)
BEGIN;
WITH l AS (SELECT id, status, no_negative, debits_pending, debits_posted, credits_posted FROM accounts WHERE id IN (:a, :b) ORDER BY id FOR UPDATE) SELECT coalesce(max(credits_posted - debits_posted - debits_pending) FILTER (WHERE id = :a AND status = 'open'), -1) AS avail, count(*) FILTER (WHERE status = 'open') AS nopen FROM l \gset
\if :avail >= :amt and :nopen = 2
INSERT INTO transfers (transfer_key, kind, phase, debit_account_id, credit_account_id, amount, actor, reason) VALUES ('pgb-' || gen_random_uuid(), 'redeem', 'single', :a, :b, :amt, 'bench', '') RETURNING id AS tid, transfer_key AS tkey \gset
INSERT INTO entries (account_id, seq, transfer_id, side, pending_delta, posted_delta, balance_after, prev_hash, hash) SELECT x.id, x.entry_count + 1, :tid::bigint, s.side, 0, :amt::bigint, s.bal, x.chain_head, encode(sha256(convert_to(concat_ws('|', x.chain_head, x.id, x.entry_count + 1, 'redeem', 'single', s.side, s.other, :amt::bigint, 0, :amt::bigint, s.bal, '["' || :tkey::text || '","bench","",null]'), 'UTF8')), 'hex') FROM accounts x, LATERAL (SELECT CASE WHEN x.id = :a::bigint THEN 'D' ELSE 'C' END AS side, CASE WHEN x.id = :a::bigint THEN :b::bigint ELSE :a::bigint END AS other, x.credits_posted - x.debits_posted + CASE WHEN x.id = :a::bigint THEN -:amt::bigint ELSE :amt::bigint END AS bal) s WHERE x.id IN (:a::bigint, :b::bigint);
UPDATE accounts x SET debits_posted = x.debits_posted + CASE WHEN e.side = 'D' THEN :amt::bigint ELSE 0 END, credits_posted = x.credits_posted + CASE WHEN e.side = 'C' THEN :amt::bigint ELSE 0 END, entry_count = e.seq, chain_head = e.hash FROM entries e WHERE x.id IN (:a::bigint, :b::bigint) AND e.transfer_id = :tid::bigint AND e.account_id = x.id;
\endif
COMMIT;
