-- ngx_rtmp_pgauth: the database side.
--
-- Apply as a superuser (or the database owner with CREATEROLE); safe to
-- apply again: every object is created if missing, upgraded or replaced,
-- and applied over an earlier version it keeps every key, session and
-- setting, while nginx goes on using it.
--
--     psql -d DBNAME -f pgauth.sql
--
-- Stream keys are stored as SHA-256 digests only.  nginx connects as the
-- role pgauth_nginx, which may execute the functions nginx calls and read
-- nothing else:
--
--     ALTER ROLE pgauth_nginx WITH LOGIN PASSWORD '...';
--
-- Everything belongs to the role pgauth_owner (NOLOGIN, no superuser): the
-- functions nginx calls run as that role (SECURITY DEFINER), never as
-- whoever applied this file.
--
-- Live control: every change that takes a key's right away (disable,
-- delete, expiry moved to the past) ends the key's live sessions and sends
-- NOTIFY on the channel in pgauth.settings ('pgauth'), payload
-- 'end <session id> <reason>'; the nginx worker holding the session asks
-- the database about it (any login may NOTIFY: a notification is only a
-- hint) and closes it.  An expiry moved into the future sends 'recheck'.
-- Any change of a key sends 'key <hex SHA-256 digest>': nginx's decision
-- caches drop it.

BEGIN;

CREATE SCHEMA IF NOT EXISTS pgauth;
REVOKE ALL ON SCHEMA pgauth FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgauth_nginx') THEN
        CREATE ROLE pgauth_nginx NOLOGIN;
    END IF;

    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgauth_owner') THEN
        CREATE ROLE pgauth_owner NOLOGIN;
    END IF;

    -- whoever applies this file hands its objects over to pgauth_owner
    -- and administers keys through it
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'pgauth_owner', 'MEMBER')
    THEN
        EXECUTE format('GRANT pgauth_owner TO %I', current_user);
    END IF;
END
$$;


CREATE TABLE IF NOT EXISTS pgauth.settings (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    -- the NOTIFY channel: nginx's pgauth_listen must name the same
    channel      text NOT NULL DEFAULT 'pgauth'
);

INSERT INTO pgauth.settings DEFAULT VALUES ON CONFLICT DO NOTHING;


CREATE TABLE IF NOT EXISTS pgauth.stream_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_digest   bytea NOT NULL UNIQUE
                 CHECK (octet_length(key_digest) = 32),
    stream_name  text NOT NULL
                 CHECK (stream_name ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'),
    app          text NOT NULL DEFAULT 'live'
                 CHECK (app <> ''),
    enabled      boolean NOT NULL DEFAULT true,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    comment      text
);

-- the longest a single publish with this key may last; NULL: no limit
ALTER TABLE pgauth.stream_keys
    ADD COLUMN IF NOT EXISTS max_session interval
    CHECK (max_session > interval '0');

-- several keys may publish one stream name: rotation without downtime
CREATE INDEX IF NOT EXISTS stream_keys_stream_name
    ON pgauth.stream_keys (stream_name);


CREATE TABLE IF NOT EXISTS pgauth.sessions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- the key used, kept when the key is deleted (no foreign key: deleting
    -- a key must not scan the whole history)
    key_id       bigint,
    stream_name  text NOT NULL,
    app          text NOT NULL,
    client_addr  text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz
);

ALTER TABLE pgauth.sessions
    ADD COLUMN IF NOT EXISTS node text,
    ADD COLUMN IF NOT EXISTS worker_pid integer,
    ADD COLUMN IF NOT EXISTS end_reason text,
    -- which nginx on the node: two with one node name do not mix up
    ADD COLUMN IF NOT EXISTS host_id text;

-- 0.1.0 had key_id REFERENCES stream_keys ON DELETE SET NULL
ALTER TABLE pgauth.sessions DROP CONSTRAINT IF EXISTS sessions_key_id_fkey;

CREATE INDEX IF NOT EXISTS sessions_live
    ON pgauth.sessions (stream_name) WHERE ended_at IS NULL;

CREATE INDEX IF NOT EXISTS sessions_live_key
    ON pgauth.sessions (key_id) WHERE ended_at IS NULL;

CREATE INDEX IF NOT EXISTS sessions_live_worker
    ON pgauth.sessions (node, worker_pid) WHERE ended_at IS NULL;


-- nginx workers with live control, as seen by their heartbeat.  A worker
-- not seen for three of its heartbeats is gone: its sessions are ended
-- ('node lost') by the next heartbeat of any worker, or by the next
-- publish of the same stream name.  A worker that starts ends the
-- sessions of the workers of its own node whose process is gone
-- ('worker gone'): a node restarted after kill -9 or a power loss can
-- publish its streams again at once.  host_id tells two nginx that share
-- a node name apart (containers): the boot and PID namespace they run in.
CREATE TABLE IF NOT EXISTS pgauth.workers (
    node         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    seen_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat    interval NOT NULL,
    PRIMARY KEY (node, pid)
);

ALTER TABLE pgauth.workers ADD COLUMN IF NOT EXISTS host_id text;


-- Viewers.  A viewer token lets its holder watch one stream of one
-- application (HLS through pgauth_viewer, RTMP play through pgauth_play)
-- until it expires or is revoked.  Tokens are stored as SHA-256 digests
-- only.  nginx asks authorize_viewer() once per viewer and keeps the
-- viewer session it opens in shared memory for the valid_for seconds the
-- row says (at most viewer_session, pgauth.settings), then asks again.
-- Revoking, deleting or expiring a token ends its viewer sessions and
-- notifies 'vend <viewer session id> <reason>'; nginx asks
-- check_viewer_sessions() before it acts on one.

ALTER TABLE pgauth.settings
    ADD COLUMN IF NOT EXISTS viewer_session interval NOT NULL
    DEFAULT '5 minutes' CHECK (viewer_session > interval '0');


CREATE TABLE IF NOT EXISTS pgauth.viewer_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_digest bytea NOT NULL UNIQUE
                 CHECK (octet_length(token_digest) = 32),
    stream_name  text NOT NULL
                 CHECK (stream_name ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'),
    app          text NOT NULL DEFAULT 'live'
                 CHECK (app <> ''),
    enabled      boolean NOT NULL DEFAULT true,
    expires_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    comment      text,
    -- how many client addresses may watch with it at once; NULL: any
    max_viewers  integer CHECK (max_viewers > 0)
);

CREATE INDEX IF NOT EXISTS viewer_tokens_stream_name
    ON pgauth.viewer_tokens (stream_name);


-- Who watched what, from where, when.  A session holds until "until"
-- unless it ended first (ended_at); nginx opens a new one when it lapses.
CREATE TABLE IF NOT EXISTS pgauth.viewer_sessions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- no foreign key, as for sessions: deleting a token keeps the history
    token_id     bigint,
    stream_name  text NOT NULL,
    app          text NOT NULL,
    client_addr  text,
    protocol     text NOT NULL,
    node         text,
    worker_pid   integer,
    started_at   timestamptz NOT NULL DEFAULT now(),
    until        timestamptz NOT NULL,
    ended_at     timestamptz,
    end_reason   text
);

CREATE INDEX IF NOT EXISTS viewer_sessions_live_token
    ON pgauth.viewer_sessions (token_id) WHERE ended_at IS NULL;

-- the RTMP plays a lost worker leaves open
CREATE INDEX IF NOT EXISTS viewer_sessions_live_play
    ON pgauth.viewer_sessions (node, worker_pid)
    WHERE ended_at IS NULL AND protocol = 'rtmp';


-- Old signatures, replaced below (a call written for the old one finds
-- the new one, through its defaults).
DROP FUNCTION IF EXISTS pgauth.authorize(bytea, text, text, text);
DROP FUNCTION IF EXISTS pgauth.authorize(bytea, text, text, text, text);
DROP FUNCTION IF EXISTS pgauth.authorize(bytea, text, text, text, text,
                                         boolean);
DROP FUNCTION IF EXISTS pgauth.authorize(bytea, text, text, text, text,
                                         boolean, bigint[]);
DROP FUNCTION IF EXISTS pgauth.publish_done(bigint);
DROP FUNCTION IF EXISTS pgauth.authorize_many(bytea[], text[], text[],
                                              text[], text[], text[]);
DROP FUNCTION IF EXISTS pgauth.heartbeat(text, integer, integer);


-- One decision at a time per stream name, on every node: decide() and
-- take_over() take an advisory lock in a key space of their own, the
-- two-integer form, class 1885823349 ('pgau'):
--
--     pg_advisory_xact_lock(1885823349, hashtext(app || '/' || name))
--
-- (written out in both: a function around it costs ten times the lock)
DROP FUNCTION IF EXISTS pgauth.lock_name(text, text);


-- The first 8 hex digits of the digest: what nginx logs as fp=.
CREATE OR REPLACE FUNCTION pgauth.fingerprint(key_digest bytea)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT substr(encode(key_digest, 'hex'), 1, 8)
$$;


-- A new secret: 40 hex digits holding 154 random bits (all of one
-- UUIDv4's and 32 of another's), safe to paste anywhere.
CREATE OR REPLACE FUNCTION pgauth.new_secret()
RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT substr(replace(gen_random_uuid()::text, '-', '')
                  || replace(gen_random_uuid()::text, '-', ''), 1, 40)
$$;


-- A new key for stream_name, valid in application app, returned once:
-- only its digest is kept.
CREATE OR REPLACE FUNCTION pgauth.create_key(
    stream_name text,
    app text DEFAULT 'live',
    expires_in interval DEFAULT NULL,
    comment text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    secret text := pgauth.new_secret();
BEGIN
    INSERT INTO pgauth.stream_keys
        (key_digest, stream_name, app, expires_at, comment)
    VALUES
        (sha256(convert_to(secret, 'UTF8')), create_key.stream_name,
         create_key.app, now() + create_key.expires_in, create_key.comment);

    RETURN secret;
END
$$;


CREATE OR REPLACE FUNCTION pgauth.disable_key(key_id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE pgauth.stream_keys SET enabled = false WHERE id = key_id
    RETURNING true
$$;


CREATE OR REPLACE FUNCTION pgauth.enable_key(key_id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE pgauth.stream_keys SET enabled = true WHERE id = key_id
    RETURNING true
$$;


CREATE OR REPLACE FUNCTION pgauth.delete_key(key_id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM pgauth.stream_keys WHERE id = key_id
    RETURNING true
$$;


-- Every key without its secret.
CREATE OR REPLACE FUNCTION pgauth.list_keys()
RETURNS TABLE (
    id bigint,
    stream_name text,
    app text,
    enabled boolean,
    expires_at timestamptz,
    created_at timestamptz,
    comment text,
    fingerprint text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.id, k.stream_name, k.app, k.enabled, k.expires_at,
           k.created_at, k.comment, pgauth.fingerprint(k.key_digest)
    FROM pgauth.stream_keys k
    ORDER BY k.stream_name, k.id
$$;


-- Ends a live session with a reason and tells nginx; false when it was
-- not live.
CREATE OR REPLACE FUNCTION pgauth.end_session(session_id bigint, reason text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE pgauth.sessions s SET ended_at = now(), end_reason = reason
    WHERE s.id = end_session.session_id AND s.ended_at IS NULL;

    IF NOT FOUND THEN
        RETURN false;
    END IF;

    PERFORM pg_notify((SELECT channel FROM pgauth.settings),
                      'end ' || end_session.session_id || ' ' || reason);
    RETURN true;
END
$$;


-- Whatever takes a key's right away, however it is done (the functions
-- below or a plain UPDATE or DELETE), ends its live sessions.
CREATE OR REPLACE FUNCTION pgauth.key_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reason text;
BEGIN
    -- nginx's decision caches forget what they knew of the key
    PERFORM pg_notify((SELECT channel FROM pgauth.settings),
                      'key ' || encode(OLD.key_digest, 'hex'));

    IF TG_OP = 'DELETE' THEN
        reason := 'deleted';
    ELSIF NOT NEW.enabled AND OLD.enabled THEN
        reason := 'revoked';
    ELSIF NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        IF NEW.expires_at <= now() THEN
            reason := 'expired';
        ELSE
            -- a later expiry, or a nearer one: the workers ask again
            PERFORM pg_notify((SELECT channel FROM pgauth.settings),
                              'recheck');
        END IF;
    ELSIF NEW.max_session IS DISTINCT FROM OLD.max_session THEN
        PERFORM pg_notify((SELECT channel FROM pgauth.settings), 'recheck');
    END IF;

    -- Every authorization of the key holds its row (FOR SHARE) until it
    -- commits, and this trigger runs once they have: the sessions they
    -- opened are seen here.  In id order, as pgauth.authorize() ends them.
    IF reason IS NOT NULL THEN
        PERFORM pgauth.end_session(s.id, reason)
        FROM (SELECT ps.id FROM pgauth.sessions ps
              WHERE ps.key_id = OLD.id AND ps.ended_at IS NULL
              ORDER BY ps.id) s;
    END IF;

    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;

    RETURN NEW;
END
$$;

-- BEFORE: the key's row is locked by this statement before its sessions
-- are looked up
DROP TRIGGER IF EXISTS key_changed ON pgauth.stream_keys;
CREATE TRIGGER key_changed
    BEFORE UPDATE OR DELETE ON pgauth.stream_keys
    FOR EACH ROW EXECUTE FUNCTION pgauth.key_changed();


-- How many seconds a session may go on: NULL for no limit.
CREATE OR REPLACE FUNCTION pgauth.valid_for(
    expires_at timestamptz,
    max_session interval,
    started_at timestamptz)
RETURNS double precision
LANGUAGE sql STABLE
-- no SET clause: inlined into its callers (all of them SECURITY DEFINER
-- with search_path = pg_catalog, pg_temp), not called as a function
AS $$
    SELECT CASE WHEN least(expires_at, started_at + max_session) IS NOT NULL
           THEN greatest(0, extract(epoch FROM
                    least(expires_at, started_at + max_session) - now()))
           END
$$;


-- Ends the sessions of workers that stopped beating.
CREATE OR REPLACE FUNCTION pgauth.sweep_lost()
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pgauth.end_session(s.id, 'node lost')
    FROM pgauth.sessions s
    JOIN pgauth.workers w ON w.node = s.node AND w.pid = s.worker_pid
    WHERE s.ended_at IS NULL AND w.seen_at < now() - 3 * w.heartbeat;

    -- its RTMP plays (HLS viewer sessions lapse by themselves)
    UPDATE pgauth.viewer_sessions v
    SET ended_at = now(), end_reason = 'node lost'
    FROM pgauth.workers w
    WHERE w.node = v.node AND w.pid = v.worker_pid
      AND v.ended_at IS NULL AND v.protocol = 'rtmp'
      AND w.seen_at < now() - 3 * w.heartbeat;

    DELETE FROM pgauth.workers w
    WHERE w.seen_at < now() - 3 * w.heartbeat
      AND NOT EXISTS (SELECT FROM pgauth.sessions s
                      WHERE s.node = w.node AND s.worker_pid = w.pid
                        AND s.ended_at IS NULL)
      AND NOT EXISTS (SELECT FROM pgauth.viewer_sessions v
                      WHERE v.node = w.node AND v.worker_pid = w.pid
                        AND v.ended_at IS NULL AND v.protocol = 'rtmp');
$$;


-- The decision of pgauth.authorize() for one publish or several at once
-- (authorize_many()): each its place n in the arrays, answered by a row
-- for each allowed one.  The publishes go in the order of their name
-- locks, then as they came; a later one of a name in the same call is
-- the later publisher (its session's id is higher).  Each step is one
-- statement for all of them, not one for each publish.  A refusal
-- (duplicate 'refuse', SQLSTATE PA001) fails the whole call: nginx asks
-- those alone.
CREATE OR REPLACE FUNCTION pgauth.decide(
    key_digests bytea[],
    apps text[],
    client_addrs text[],
    duplicates text[],
    defer_takeovers boolean[],
    endings text[],
    reserveds bigint[])
RETURNS TABLE (n integer, stream_name text, session_id bigint,
               valid_for double precision, takeover boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- the live sessions of a name through an index scan: it marks the
-- entries of ended sessions dead as it passes them (one more for each
-- end until vacuum), which a bitmap scan never does; one read them all
-- again at every publish of the name
SET enable_bitmapscan = off
-- the plans made once for the connection: planned at each call, a
-- decision alone cost 1.3 times what the loop it replaced did (pgbench,
-- 1,198 against 892 µs of PostgreSQL's CPU with its end; 1,098 so)
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    w_node    text := nullif(current_setting('pgauth.node', true), '');
    w_pid     integer := nullif(current_setting('pgauth.worker', true),
                                '')::int;
    w_host    text := nullif(current_setting('pgauth.host', true), '');
    -- the allowed publishes, in the order of their name locks: their
    -- place in the arrays, key, name, app, name lock, seconds left,
    -- whether the name is live, and their session ids
    places    integer[];
    key_ids   bigint[];
    names     text[];
    kapps     text[];
    locks     integer[];
    left_s    double precision[];
    live      boolean[];
    ids       bigint[];
    lost      boolean;
    last_id   bigint;
    -- the sessions recorded, and the ids to record again
    recorded  integer := 0;
    inserted  integer;
    again     bigint[];
BEGIN
    -- Committed without waiting for the WAL flush (the decision's answer
    -- is not held for it).  A crash of PostgreSQL may lose the last
    -- sessions recorded: each worker asks about its live sessions when
    -- its LISTEN connection is back (check_sessions()), and one the
    -- database does not know ends ('unknown'); its publisher reconnects.
    PERFORM set_config('synchronous_commit', 'off', true);

    -- FOR SHARE: a change of a key (revoke, expiry, delete) waits until
    -- this transaction is over, then its trigger sees the sessions opened
    -- here; a change that came first is seen here, as the row is read
    -- again once it commits (and an expiry is compared with the time it
    -- is read, not the time this transaction began).  Each key by its
    -- digest's index (a join read all 128 keys of the bench into a hash).
    SELECT array_agg(a.n), array_agg(a.id), array_agg(a.stream_name),
           array_agg(a.app), array_agg(a.lock), array_agg(a.valid_for)
    INTO places, key_ids, names, kapps, locks, left_s
    FROM (SELECT u.n::integer, k.id, k.stream_name, k.app, k.lock,
                 k.valid_for
          FROM unnest(key_digests, apps)
               WITH ORDINALITY AS u(digest, app, n)
          CROSS JOIN LATERAL
               (SELECT sk.id, sk.stream_name, sk.app,
                       hashtext(sk.app || '/' || sk.stream_name) AS lock,
                       pgauth.valid_for(sk.expires_at, sk.max_session,
                                        now()) AS valid_for
                FROM pgauth.stream_keys sk
                WHERE sk.key_digest = u.digest AND sk.app = u.app
                  AND sk.enabled
                  AND (sk.expires_at IS NULL
                       OR sk.expires_at > clock_timestamp())
                FOR SHARE) k
          -- of a name, those live on a lookup first, by the ids it drew
          ORDER BY k.lock, reserveds[u.n] NULLS LAST, u.n) a;

    IF places IS NULL THEN
        RETURN;
    END IF;

    -- in one order everywhere (locks is sorted): calls side by side
    -- never wait for each other in a cycle
    PERFORM pg_advisory_xact_lock(1885823349, l.lock)
    FROM unnest(locks) AS l(lock);

    -- live: another publisher of the name is, apart from this worker's
    -- own of the key whose end is on its way (ending) and those of
    -- workers that stopped beating, or one before in this call
    SELECT array_agg(x.live
                     OR EXISTS (SELECT
                                FROM generate_series(1, i.p - 1) AS e(p)
                                WHERE names[e.p] = names[i.p]
                                  AND kapps[e.p] = kapps[i.p])
                     ORDER BY i.p),
           bool_or(x.lost)
    INTO live, lost
    FROM generate_series(1, cardinality(places)) AS i(p)
    CROSS JOIN LATERAL
         (SELECT coalesce(bool_or(NOT o.ending AND NOT o.lost), false)
                     AS live,
                 coalesce(bool_or(NOT o.ending AND o.lost), false) AS lost
          FROM (SELECT coalesce(s.node IS NOT DISTINCT FROM w_node
                                AND s.worker_pid IS NOT DISTINCT FROM w_pid
                                AND s.id = ANY
                                    (endings[places[i.p]]::bigint[]),
                                false) AS ending,
                       coalesce(w.seen_at < now() - 3 * w.heartbeat, false)
                           AS lost
                FROM pgauth.sessions s
                LEFT JOIN pgauth.workers w
                       ON w.node = s.node AND w.pid = s.worker_pid
                WHERE s.stream_name = names[i.p] AND s.app = kapps[i.p]
                  AND s.ended_at IS NULL) o) x;

    FOR j IN 1 .. cardinality(places) LOOP
        IF live[j] AND duplicates[places[j]] = 'refuse' THEN
            RAISE EXCEPTION 'stream "%" is already live', names[j]
                USING ERRCODE = 'PA001';
        END IF;

        -- the id look_up() drew, if the sequence gave it out (nginx's
        -- role could name any), or a new one
        IF reserveds[places[j]] IS NOT NULL THEN
            last_id := coalesce(last_id,
                           pg_sequence_last_value('pgauth.sessions_id_seq'));
        END IF;

        IF reserveds[places[j]] <= last_id THEN
            ids[j] := reserveds[places[j]];
        ELSE
            ids[j] := nextval('pgauth.sessions_id_seq');
        END IF;
    END LOOP;

    -- an id some session has already (a reserved one, or one named
    -- twice) gets a new one, and its publish is recorded again
    LOOP
        INSERT INTO pgauth.sessions
            (id, key_id, stream_name, app, client_addr, node, worker_pid,
             host_id)
        OVERRIDING SYSTEM VALUE
        SELECT ids[i.p], key_ids[i.p], names[i.p], kapps[i.p],
               client_addrs[places[i.p]], w_node, w_pid, w_host
        FROM generate_series(1, cardinality(places)) AS i(p)
        WHERE again IS NULL OR ids[i.p] = ANY (again)
        ON CONFLICT (id) DO NOTHING;

        GET DIAGNOSTICS inserted = ROW_COUNT;
        recorded := recorded + inserted;

        EXIT WHEN recorded = cardinality(places);

        again := '{}';

        FOR j IN 1 .. cardinality(places) LOOP
            CONTINUE WHEN ids[j] <> ALL (ids[1 : j - 1])
                          AND EXISTS (SELECT FROM pgauth.sessions s
                                      WHERE s.id = ids[j]
                                        AND s.xmin
                                            = pg_current_xact_id()::xid);

            ids[j] := nextval('pgauth.sessions_id_seq');
            again := again || ids[j];
        END LOOP;
    END LOOP;

    -- the ends this call makes, in id order (rare: a statement for each
    -- publish then): of the other publishers of the name, those of
    -- workers that stopped beating ('node lost') and, unless the
    -- takeover is deferred (take_over()), the others ('takeover'), but
    -- those after it in this call
    FOR j IN 1 .. cardinality(places) LOOP
        CONTINUE WHEN NOT lost
                      AND NOT (live[j]
                               AND NOT coalesce(defer_takeovers[places[j]],
                                                false));

        PERFORM pgauth.end_session(o.id, CASE WHEN o.lost THEN 'node lost'
                                              ELSE 'takeover' END)
        FROM (SELECT s.id,
                     coalesce(w.seen_at < now() - 3 * w.heartbeat, false)
                         AS lost
              FROM pgauth.sessions s
              LEFT JOIN pgauth.workers w
                     ON w.node = s.node AND w.pid = s.worker_pid
              WHERE s.stream_name = names[j] AND s.app = kapps[j]
                AND s.ended_at IS NULL
                AND (s.id <> ALL (ids) OR s.id = ANY (ids[1 : j - 1]))
                AND NOT coalesce(s.node IS NOT DISTINCT FROM w_node
                                 AND s.worker_pid IS NOT DISTINCT FROM w_pid
                                 AND s.id = ANY
                                     (endings[places[j]]::bigint[]),
                                 false)
              ORDER BY s.id) o
        WHERE o.lost
           OR (live[j] AND NOT coalesce(defer_takeovers[places[j]], false));
    END LOOP;

    FOR j IN 1 .. cardinality(places) LOOP
        n := places[j];
        stream_name := names[j];
        session_id := ids[j];
        valid_for := left_s[j];
        takeover := live[j] AND coalesce(defer_takeovers[places[j]], false);
        RETURN NEXT;
    END LOOP;
END
$$;


-- Used by nginx's default pgauth_query: a row when the key may publish in
-- app, with the public name to publish under, the new session's id and
-- how many seconds it may last (NULL: no limit).  The session belongs to
-- the worker named by the connection's pgauth.node, pgauth.worker and
-- pgauth.host settings (nginx sets them).  Another live publisher of the
-- same name is refused with SQLSTATE PA001 when duplicate is 'refuse';
-- with 'takeover' it is ended here, or, with defer_takeover, left live and
-- the row says takeover: nginx calls take_over() once it knows its client
-- is still waiting, so a decision that came too late ends no one.
-- ending: the worker's own sessions of the key whose end it is recording
-- (in a batch not yet committed): not live for this decision, so that a
-- publisher coming back at once is neither refused nor a takeover.
-- reserved: the id look_up() drew for the publish that went live on its
-- answer, its session's id (see look_up()).
CREATE OR REPLACE FUNCTION pgauth.authorize(
    key_digest bytea,
    app text,
    client_addr text,
    args text,
    duplicate text DEFAULT 'takeover',
    defer_takeover boolean DEFAULT false,
    ending bigint[] DEFAULT NULL,
    reserved bigint DEFAULT NULL)
RETURNS TABLE (stream_name text, session_id bigint,
               valid_for double precision, takeover boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT d.stream_name, d.session_id, d.valid_for, d.takeover
        FROM pgauth.decide(ARRAY[authorize.key_digest], ARRAY[authorize.app],
                           ARRAY[authorize.client_addr],
                           ARRAY[authorize.duplicate],
                           ARRAY[authorize.defer_takeover],
                           ARRAY[authorize.ending::text],
                           ARRAY[authorize.reserved]) d;
END
$$;


-- What nginx asks first with the default pgauth_query (pgauth_lookup_first,
-- pgauth_duplicate takeover) while its pool has a connection free: the
-- key's public name and how many seconds it may publish, as authorize()
-- would answer, and nothing recorded (no takeover).  The publish goes
-- live on it, and nginx calls authorize() right after, with session_id
-- as reserved: the session gets the id drawn now, and sessions are
-- ordered by when they went live, not by when they were recorded (a
-- decision made meanwhile is later: take_over()).  The session ends when
-- authorize() refuses (the key changed in between).
CREATE OR REPLACE FUNCTION pgauth.look_up(key_digest bytea, app text)
RETURNS TABLE (stream_name text, session_id bigint,
               valid_for double precision, takeover boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- plpgsql: its plan is kept for the connection
AS $$
BEGIN
    RETURN QUERY
        SELECT sk.stream_name, nextval('pgauth.sessions_id_seq'),
               pgauth.valid_for(sk.expires_at, sk.max_session, now()),
               false
        FROM pgauth.stream_keys sk
        WHERE sk.key_digest = look_up.key_digest
          AND sk.app = look_up.app
          AND sk.enabled
          AND (sk.expires_at IS NULL OR sk.expires_at > clock_timestamp());
END
$$;


-- What nginx calls with the default pgauth_query when decisions queue up
-- (pgauth_duplicate takeover): several at once, one transaction and one
-- commit for all of them.  Each is decided as authorize() decides one
-- (deferred takeover; $6 is each one's array literal, $7 the id its
-- lookup drew, or NULL), by decide() for all of them; a row for each
-- allowed one, n its place in the arrays.
CREATE OR REPLACE FUNCTION pgauth.authorize_many(
    key_digests bytea[],
    apps text[],
    client_addrs text[],
    args text[],
    duplicates text[],
    endings text[],
    reserveds bigint[] DEFAULT NULL)
RETURNS TABLE (n integer, stream_name text, session_id bigint,
               valid_for double precision, takeover boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT d.n, d.stream_name, d.session_id, d.valid_for, d.takeover
        FROM pgauth.decide(key_digests, apps, client_addrs, duplicates,
                           array_fill(true, ARRAY[cardinality(key_digests)]),
                           endings, reserveds) d;
END
$$;


-- The publish of session_id takes its stream name over, once nginx knows
-- its client is still there: the other live publishers of the name end
-- ('takeover').  The latest publish wins: false, and this session ended,
-- when a later one of the name is live; false when this one is not live
-- any more.
CREATE OR REPLACE FUNCTION pgauth.take_over(session_id bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s  pgauth.sessions%ROWTYPE;
BEGIN
    -- without the WAL flush, as authorize(): only pgauth_duplicate
    -- takeover calls this, and under it a takeover a crash lost leaves
    -- the old session live in the table, which the next publish of the
    -- name ends (its publisher was told at the commit, by NOTIFY)
    PERFORM set_config('synchronous_commit', 'off', true);

    SELECT * INTO s
    FROM pgauth.sessions ps
    WHERE ps.id = take_over.session_id AND ps.ended_at IS NULL;

    IF NOT FOUND THEN
        RETURN false;
    END IF;

    PERFORM pg_advisory_xact_lock(1885823349,
                                  hashtext(s.app || '/' || s.stream_name));

    -- read again under the lock: ended meanwhile, or a later one is live
    IF NOT EXISTS (SELECT FROM pgauth.sessions ps
                   WHERE ps.id = s.id AND ps.ended_at IS NULL)
    THEN
        RETURN false;
    END IF;

    IF EXISTS (SELECT FROM pgauth.sessions o
               LEFT JOIN pgauth.workers w
                      ON w.node = o.node AND w.pid = o.worker_pid
               WHERE o.stream_name = s.stream_name AND o.app = s.app
                 AND o.ended_at IS NULL AND o.id > s.id
                 AND NOT coalesce(w.seen_at < now() - 3 * w.heartbeat,
                                  false))
    THEN
        PERFORM pgauth.end_session(s.id, 'takeover');
        RETURN false;
    END IF;

    PERFORM pgauth.end_session(o.id, CASE WHEN o.lost THEN 'node lost'
                                          ELSE 'takeover' END)
    FROM (SELECT ps.id,
                 coalesce(w.seen_at < now() - 3 * w.heartbeat, false) AS lost
          FROM pgauth.sessions ps
          LEFT JOIN pgauth.workers w
                 ON w.node = ps.node AND w.pid = ps.worker_pid
          WHERE ps.stream_name = s.stream_name AND ps.app = s.app
            AND ps.ended_at IS NULL AND ps.id <> s.id
          ORDER BY ps.id) o;

    RETURN true;
END
$$;


-- Used by nginx's default pgauth_done_query when a publish ends; only a
-- session of the node the connection says it is (nginx sets pgauth.node):
-- an id of another node's session ends nothing.
CREATE OR REPLACE FUNCTION pgauth.publish_done(
    session_id bigint,
    reason text DEFAULT 'unpublish')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- plpgsql: its plan is kept for the connection (an SQL function's is made
-- again at every call); committed as usual, with the WAL flush: an end a
-- crash lost would leave the name live for pgauth_duplicate refuse
AS $$
BEGIN
    UPDATE pgauth.sessions s
    SET ended_at = now(), end_reason = coalesce(reason, 'unpublish')
    WHERE s.id = publish_done.session_id AND s.ended_at IS NULL
      AND s.node IS NOT DISTINCT FROM
          nullif(current_setting('pgauth.node', true), '');
END
$$;


-- What nginx calls with the default pgauth_done_query: the ends of
-- several sessions at once (those that came while the previous call was
-- in flight), one transaction and one WAL flush for all of them; as
-- publish_done(), only sessions of the connection's node.  Its plans are
-- made once for the connection, through the primary key whatever the
-- table looked like then: a generic plan has to guess how many ids come,
-- and made while the table was small (a new installation, before
-- autovacuum analyzed it) it scanned the whole table at every call, row
-- locks of the ends held meanwhile, as the table grew.  Without
-- sequential and bitmap scans the primary key is its only way (the
-- statements name no other index's columns or predicate).  Planned at
-- each call instead, a call of 21 ends took 1.5 times as long
-- (pg_stat_statements, 600 against 390 µs).  jit off: a path turned off
-- costs the planner past jit_above_cost.
CREATE OR REPLACE FUNCTION pgauth.publish_done_many(
    session_ids bigint[],
    reasons text[])
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_bitmapscan = off
SET jit = off
AS $$
DECLARE
    live  bigint[];
BEGIN
    -- Locked in id order first, as every other end of several sessions
    -- locks them: two never wait for each other (the array comes in the
    -- order the ends came).  Found by the primary key alone, and the
    -- live ones picked from what it locked: a plan through the partial
    -- indexes (ended_at IS NULL) would read every entry they still hold
    -- of the sessions ended since the last vacuum, at every call.
    SELECT array_agg(l.id) FILTER (WHERE l.ended_at IS NULL)
    INTO live
    FROM (SELECT s.id, s.ended_at
          FROM pgauth.sessions s
          WHERE s.id = ANY (session_ids)
          ORDER BY s.id
          FOR UPDATE) l;

    -- held since: still live
    UPDATE pgauth.sessions s
    SET ended_at = now(), end_reason = coalesce(e.reason, 'unpublish')
    FROM unnest(session_ids, reasons) AS e(id, reason)
    WHERE s.id = e.id AND s.id = ANY (live)
      AND s.node IS NOT DISTINCT FROM
          nullif(current_setting('pgauth.node', true), '');
END
$$;


-- nginx asks about its live sessions (after its LISTEN connection was
-- lost, or periodically): a row for each that must end (with the
-- reason) or whose time limit is known (seconds left).
CREATE OR REPLACE FUNCTION pgauth.check_sessions(ids text[])
RETURNS TABLE (session_id text, end_reason text,
               valid_for double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.id,
           CASE
               WHEN s.id IS NULL THEN 'unknown'
               WHEN s.ended_at IS NOT NULL THEN coalesce(s.end_reason, 'ended')
               WHEN k.id IS NULL THEN 'deleted'
               WHEN NOT k.enabled THEN 'revoked'
               WHEN k.expires_at <= now() THEN 'expired'
               WHEN s.started_at + k.max_session <= now() THEN 'time limit'
           END,
           pgauth.valid_for(k.expires_at, k.max_session, s.started_at)
    FROM unnest(ids) AS i(id)
    -- by the primary key: the history may hold millions of rows
    LEFT JOIN pgauth.sessions s
           ON s.id = CASE WHEN i.id ~ '^[0-9]{1,18}$' THEN i.id::bigint END
    LEFT JOIN pgauth.stream_keys k ON k.id = s.key_id
$$;


-- A worker with live control has started: register it and return the
-- other workers of its node.  same_host: of this nginx (the same host_id,
-- or of a version that had none), live or not: nginx ends those whose
-- process is gone with worker_gone().  Not same_host: another nginx beats
-- under this node name (containers of one host name), which nginx logs;
-- it never ends their sessions.
CREATE OR REPLACE FUNCTION pgauth.worker_register(
    node text, pid integer, heartbeat_ms integer, host_id text)
RETURNS TABLE (other_pid integer, same_host boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- this very pid, beating for another nginx
    RETURN QUERY
        SELECT w.pid, false
        FROM pgauth.workers w
        WHERE w.node = worker_register.node AND w.pid = worker_register.pid
          AND w.host_id <> worker_register.host_id
          AND w.seen_at >= now() - 3 * w.heartbeat;

    INSERT INTO pgauth.workers AS w (node, pid, heartbeat, host_id)
    VALUES (worker_register.node, worker_register.pid,
            worker_register.heartbeat_ms * interval '1 millisecond',
            worker_register.host_id)
    ON CONFLICT ON CONSTRAINT workers_pkey DO UPDATE
        SET seen_at = now(), heartbeat = EXCLUDED.heartbeat,
            host_id = EXCLUDED.host_id;

    RETURN QUERY
        SELECT w.pid,
               w.host_id IS NULL OR w.host_id = worker_register.host_id
        FROM pgauth.workers w
        WHERE w.node = worker_register.node AND w.pid <> worker_register.pid
          AND (w.host_id IS NULL OR w.host_id = worker_register.host_id
               OR w.seen_at >= now() - 3 * w.heartbeat)
        UNION
        -- sessions of workers that never registered
        SELECT DISTINCT s.worker_pid, true
        FROM pgauth.sessions s
        WHERE s.node = worker_register.node AND s.ended_at IS NULL
          AND s.worker_pid <> worker_register.pid
          AND (s.host_id IS NULL OR s.host_id = worker_register.host_id)
          AND NOT EXISTS (SELECT FROM pgauth.workers w
                          WHERE w.node = s.node AND w.pid = s.worker_pid);
END
$$;


-- What nginx 0.1.0 called: the pids worker_register() says are its own.
CREATE OR REPLACE FUNCTION pgauth.worker_start(
    node text, pid integer, heartbeat_ms integer)
RETURNS SETOF integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT r.other_pid
    FROM pgauth.worker_register(node, pid, heartbeat_ms, NULL) r
    WHERE r.same_host
$$;


CREATE OR REPLACE FUNCTION pgauth.worker_gone(node text, pid integer)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pgauth.end_session(s.id, 'worker gone')
    FROM pgauth.sessions s
    WHERE s.node = worker_gone.node AND s.worker_pid = worker_gone.pid
      AND s.ended_at IS NULL;

    UPDATE pgauth.viewer_sessions v
    SET ended_at = now(), end_reason = 'worker gone'
    WHERE v.node = worker_gone.node AND v.worker_pid = worker_gone.pid
      AND v.ended_at IS NULL AND v.protocol = 'rtmp';

    DELETE FROM pgauth.workers w
    WHERE w.node = worker_gone.node AND w.pid = worker_gone.pid;
$$;


-- The worker is alive; the sessions of workers three heartbeats late
-- end.  False when the row was another nginx's, seen within its last
-- three heartbeats: two nginx beat under one node name and pid.
CREATE OR REPLACE FUNCTION pgauth.heartbeat(
    node text, pid integer, heartbeat_ms integer, host_id text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    shared boolean;
BEGIN
    SELECT w.host_id <> heartbeat.host_id
           AND w.seen_at >= now() - 3 * w.heartbeat
    INTO shared
    FROM pgauth.workers w
    WHERE w.node = heartbeat.node AND w.pid = heartbeat.pid;

    INSERT INTO pgauth.workers AS w (node, pid, heartbeat, host_id)
    VALUES (heartbeat.node, heartbeat.pid,
            heartbeat.heartbeat_ms * interval '1 millisecond',
            heartbeat.host_id)
    ON CONFLICT ON CONSTRAINT workers_pkey DO UPDATE
        SET seen_at = now(), heartbeat = EXCLUDED.heartbeat,
            host_id = coalesce(EXCLUDED.host_id, w.host_id);

    PERFORM pgauth.sweep_lost();

    RETURN NOT coalesce(shared, false);
END
$$;


-- Administration.

-- Takes the key's right away and ends its live sessions: they stop within
-- a second, and reconnecting with the key is refused.
CREATE OR REPLACE FUNCTION pgauth.revoke_key(key_id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE pgauth.stream_keys SET enabled = false WHERE id = key_id
    RETURNING true
$$;


-- Sets or clears a key's expiry; an expiry in the past ends its sessions.
CREATE OR REPLACE FUNCTION pgauth.expire_key(
    key_id bigint, at timestamptz DEFAULT now())
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE pgauth.stream_keys SET expires_at = at WHERE id = key_id
    RETURNING true
$$;


-- Sets or clears the longest a single publish with the key may last.
CREATE OR REPLACE FUNCTION pgauth.set_max_session(
    key_id bigint, max_session interval)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE pgauth.stream_keys SET max_session = set_max_session.max_session
    WHERE id = key_id
    RETURNING true
$$;


-- The keys an operator names with what is at hand: a stream name (every
-- key of it, in every application), or else a fingerprint as nginx logs
-- it (fp=, the first 8 hex digits of the digest, or more of them).  The
-- functions below that take text instead of an id act on all of them and
-- return how many keys they changed.
CREATE OR REPLACE FUNCTION pgauth.find_keys(name_or_fp text)
RETURNS SETOF bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT k.id FROM pgauth.stream_keys k
    WHERE k.stream_name = name_or_fp
    UNION ALL
    SELECT k.id FROM pgauth.stream_keys k
    WHERE NOT EXISTS (SELECT FROM pgauth.stream_keys n
                      WHERE n.stream_name = name_or_fp)
      AND name_or_fp ~ '^[0-9A-Fa-f]{8,64}$'
      AND starts_with(encode(k.key_digest, 'hex'), lower(name_or_fp))
$$;


-- each by the function of the id, for every key named
CREATE OR REPLACE FUNCTION pgauth.disable_key(name_or_fp text)
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer FROM pgauth.find_keys(name_or_fp) AS k(id)
    WHERE pgauth.disable_key(k.id)
$$;


CREATE OR REPLACE FUNCTION pgauth.revoke_key(name_or_fp text)
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer FROM pgauth.find_keys(name_or_fp) AS k(id)
    WHERE pgauth.revoke_key(k.id)
$$;


CREATE OR REPLACE FUNCTION pgauth.enable_key(name_or_fp text)
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer FROM pgauth.find_keys(name_or_fp) AS k(id)
    WHERE pgauth.enable_key(k.id)
$$;


CREATE OR REPLACE FUNCTION pgauth.delete_key(name_or_fp text)
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer FROM pgauth.find_keys(name_or_fp) AS k(id)
    WHERE pgauth.delete_key(k.id)
$$;


CREATE OR REPLACE FUNCTION pgauth.expire_key(
    name_or_fp text, at timestamptz DEFAULT now())
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer FROM pgauth.find_keys(name_or_fp) AS k(id)
    WHERE pgauth.expire_key(k.id, at)
$$;


CREATE OR REPLACE FUNCTION pgauth.set_max_session(
    name_or_fp text, max_session interval)
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer FROM pgauth.find_keys(name_or_fp) AS k(id)
    WHERE pgauth.set_max_session(k.id, set_max_session.max_session)
$$;


-- Ends the live publish of a stream; the key stays valid, so the encoder
-- may reconnect (revoke_key() prevents that).  Returns the sessions ended.
CREATE OR REPLACE FUNCTION pgauth.kick_stream(
    stream_name text, app text DEFAULT NULL)
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer FROM pgauth.sessions s
    WHERE s.stream_name = kick_stream.stream_name
      AND (kick_stream.app IS NULL OR s.app = kick_stream.app)
      AND s.ended_at IS NULL
      AND pgauth.end_session(s.id, 'kicked')
$$;


-- Who is live, where.
CREATE OR REPLACE FUNCTION pgauth.live_sessions()
RETURNS TABLE (
    session_id bigint,
    stream_name text,
    app text,
    node text,
    worker_pid integer,
    client_addr text,
    started_at timestamptz,
    key_id bigint,
    fingerprint text,
    node_seen_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.id, s.stream_name, s.app, s.node, s.worker_pid, s.client_addr,
           s.started_at, s.key_id, pgauth.fingerprint(k.key_digest),
           w.seen_at
    FROM pgauth.sessions s
    LEFT JOIN pgauth.stream_keys k ON k.id = s.key_id
    LEFT JOIN pgauth.workers w ON w.node = s.node AND w.pid = s.worker_pid
    WHERE s.ended_at IS NULL
    ORDER BY s.stream_name, s.started_at
$$;


-- A new viewer token, returned once: only its digest is kept.
CREATE OR REPLACE FUNCTION pgauth.create_viewer_token(
    stream_name text,
    app text DEFAULT 'live',
    valid_for interval DEFAULT '1 day',
    comment text DEFAULT NULL,
    max_viewers integer DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    secret text := pgauth.new_secret();
BEGIN
    INSERT INTO pgauth.viewer_tokens
        (token_digest, stream_name, app, expires_at, comment, max_viewers)
    VALUES
        (sha256(convert_to(secret, 'UTF8')),
         create_viewer_token.stream_name, create_viewer_token.app,
         now() + create_viewer_token.valid_for, create_viewer_token.comment,
         create_viewer_token.max_viewers);

    RETURN secret;
END
$$;


-- Every viewer token without its secret, with how many addresses watch.
CREATE OR REPLACE FUNCTION pgauth.list_viewer_tokens()
RETURNS TABLE (
    id bigint,
    stream_name text,
    app text,
    enabled boolean,
    expires_at timestamptz,
    created_at timestamptz,
    comment text,
    max_viewers integer,
    watching bigint,
    fingerprint text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.id, t.stream_name, t.app, t.enabled, t.expires_at,
           t.created_at, t.comment, t.max_viewers,
           (SELECT count(DISTINCT v.client_addr)
            FROM pgauth.viewer_sessions v
            WHERE v.token_id = t.id AND v.ended_at IS NULL
              AND v.until > now()),
           pgauth.fingerprint(t.token_digest)
    FROM pgauth.viewer_tokens t
    ORDER BY t.stream_name, t.id
$$;


CREATE OR REPLACE FUNCTION pgauth.revoke_viewer_token(token_id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE pgauth.viewer_tokens SET enabled = false WHERE id = token_id
    RETURNING true
$$;


CREATE OR REPLACE FUNCTION pgauth.delete_viewer_token(token_id bigint)
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM pgauth.viewer_tokens WHERE id = token_id
    RETURNING true
$$;


-- Whatever takes a token's right away (revoke, delete, an expiry moved to
-- the past, a plain UPDATE or DELETE) ends its viewer sessions and tells
-- nginx, each session in its own notification.
CREATE OR REPLACE FUNCTION pgauth.viewer_token_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    reason text;
    sid    bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        reason := 'deleted';
    ELSIF NOT NEW.enabled AND OLD.enabled THEN
        reason := 'revoked';
    ELSIF NEW.expires_at IS DISTINCT FROM OLD.expires_at
          AND NEW.expires_at <= now()
    THEN
        reason := 'expired';
    ELSIF NEW.stream_name IS DISTINCT FROM OLD.stream_name
          OR NEW.app IS DISTINCT FROM OLD.app
    THEN
        reason := 'revoked';
    END IF;

    -- authorize_viewer() holds the token's row (FOR SHARE) until it
    -- commits: the sessions it opened are seen here
    IF reason IS NOT NULL THEN
        FOR sid IN
            UPDATE pgauth.viewer_sessions vs
            SET ended_at = now(), end_reason = reason
            WHERE vs.token_id = OLD.id AND vs.ended_at IS NULL
              AND vs.until > now()
            RETURNING vs.id
        LOOP
            PERFORM pg_notify((SELECT channel FROM pgauth.settings),
                              'vend ' || sid || ' ' || reason);
        END LOOP;
    END IF;

    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;

    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS viewer_token_changed ON pgauth.viewer_tokens;
CREATE TRIGGER viewer_token_changed
    BEFORE UPDATE OR DELETE ON pgauth.viewer_tokens
    FOR EACH ROW EXECUTE FUNCTION pgauth.viewer_token_changed();


-- Used by pgauth_viewer and pgauth_play: a row when the token lets its
-- holder watch stream_name in app, with the new viewer session's id and
-- how many seconds nginx may keep it; no row otherwise (a wrong, foreign,
-- disabled or expired token, or one watched from max_viewers other
-- addresses already).  protocol: 'hls' or 'rtmp'.
CREATE OR REPLACE FUNCTION pgauth.authorize_viewer(
    token_digest bytea,
    app text,
    stream_name text,
    client_addr text,
    protocol text)
RETURNS TABLE (session_id bigint, valid_for double precision)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t      pgauth.viewer_tokens%ROWTYPE;
    node   text := nullif(current_setting('pgauth.node', true), '');
    pid    integer := nullif(current_setting('pgauth.worker', true), '')::int;
    holds  timestamptz;
BEGIN
    SELECT * INTO t
    FROM pgauth.viewer_tokens vt
    WHERE vt.token_digest = authorize_viewer.token_digest
      AND vt.app = authorize_viewer.app
      AND vt.stream_name = authorize_viewer.stream_name
      AND vt.enabled
      AND (vt.expires_at IS NULL OR vt.expires_at > clock_timestamp())
    FOR SHARE;

    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- first requests of one capped token, one at a time: each counts
    -- the sessions the ones before it opened (class 1885823350)
    IF t.max_viewers IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(1885823350, hashtext(t.id::text));
    END IF;

    IF t.max_viewers IS NOT NULL
       AND (SELECT count(DISTINCT v.client_addr)
            FROM pgauth.viewer_sessions v
            WHERE v.token_id = t.id AND v.ended_at IS NULL
              AND v.until > now()
              AND v.client_addr IS DISTINCT FROM authorize_viewer.client_addr)
           >= t.max_viewers
    THEN
        RETURN;
    END IF;

    -- an RTMP play holds until the token expires, or it ends; nginx keeps
    -- an HLS viewer's session for viewer_session, then asks again
    IF authorize_viewer.protocol = 'rtmp' THEN
        holds := coalesce(t.expires_at, 'infinity');
    ELSE
        holds := now() + (SELECT s.viewer_session FROM pgauth.settings s);

        IF t.expires_at < holds THEN
            holds := t.expires_at;
        END IF;
    END IF;

    INSERT INTO pgauth.viewer_sessions
        (token_id, stream_name, app, client_addr, protocol, node,
         worker_pid, until)
    VALUES
        (t.id, t.stream_name, t.app, authorize_viewer.client_addr,
         authorize_viewer.protocol, node, pid, holds)
    RETURNING id INTO session_id;

    valid_for := CASE WHEN holds < 'infinity'
                      THEN greatest(0, extract(epoch FROM holds - now()))
                 END;

    RETURN NEXT;
END
$$;


-- nginx asks about viewer sessions a notification named: a row for each
-- that must end, with the reason.
CREATE OR REPLACE FUNCTION pgauth.check_viewer_sessions(ids text[])
RETURNS TABLE (session_id text, end_reason text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT i.id,
           CASE
               WHEN v.id IS NULL THEN 'unknown'
               WHEN v.ended_at IS NOT NULL THEN coalesce(v.end_reason, 'ended')
               WHEN t.id IS NULL THEN 'deleted'
               WHEN NOT t.enabled THEN 'revoked'
               WHEN t.expires_at <= now() THEN 'expired'
               WHEN v.until <= now() THEN 'lapsed'
           END
    FROM unnest(ids) AS i(id)
    LEFT JOIN pgauth.viewer_sessions v
           ON v.id = CASE WHEN i.id ~ '^[0-9]{1,18}$' THEN i.id::bigint END
    LEFT JOIN pgauth.viewer_tokens t ON t.id = v.token_id
$$;


-- An RTMP play is over.
CREATE OR REPLACE FUNCTION pgauth.viewer_done(session_id bigint,
    reason text DEFAULT NULL)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE pgauth.viewer_sessions v
    SET ended_at = now(), end_reason = coalesce(reason, 'ended')
    WHERE v.id = viewer_done.session_id AND v.ended_at IS NULL
      AND v.node IS NOT DISTINCT FROM
          nullif(current_setting('pgauth.node', true), '')
$$;


-- Deletes the sessions, and the viewer sessions, that ended more than
-- older_than ago; returns how many.  Live sessions are never touched.
-- Schedule it (cron, pg_cron):
--
--     SELECT pgauth.purge_sessions('90 days');
CREATE OR REPLACE FUNCTION pgauth.purge_sessions(
    older_than interval DEFAULT '90 days')
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM pgauth.sessions s
        WHERE s.ended_at < now() - purge_sessions.older_than
        RETURNING 1
    ), viewers AS (
        DELETE FROM pgauth.viewer_sessions v
        WHERE coalesce(v.ended_at, v.until)
              < now() - purge_sessions.older_than
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM viewers)
$$;


-- Everything in the schema belongs to pgauth_owner: the functions nginx
-- calls run as that role, which can do no more than this schema allows.
ALTER SCHEMA pgauth OWNER TO pgauth_owner;

DO $$
DECLARE
    o  record;
BEGIN
    FOR o IN SELECT c.oid::regclass AS name
             FROM pg_class c
             WHERE c.relnamespace = 'pgauth'::regnamespace
               AND c.relkind = 'r'
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO pgauth_owner', o.name);
    END LOOP;

    FOR o IN SELECT p.oid::regprocedure AS name
             FROM pg_proc p
             WHERE p.pronamespace = 'pgauth'::regnamespace
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO pgauth_owner', o.name);
    END LOOP;
END
$$;


-- pgauth_owner and its members administer keys; nginx's role runs the
-- functions nginx needs and sees no table.
REVOKE ALL ON ALL TABLES IN SCHEMA pgauth FROM PUBLIC, pgauth_nginx;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgauth FROM PUBLIC, pgauth_nginx;

GRANT USAGE ON SCHEMA pgauth TO pgauth_nginx;
GRANT EXECUTE ON FUNCTION
    pgauth.authorize(bytea, text, text, text, text, boolean, bigint[],
                     bigint),
    pgauth.authorize_many(bytea[], text[], text[], text[], text[], text[],
                          bigint[]),
    pgauth.look_up(bytea, text),
    pgauth.take_over(bigint),
    pgauth.publish_done(bigint, text),
    pgauth.publish_done_many(bigint[], text[]),
    pgauth.check_sessions(text[]),
    pgauth.worker_register(text, integer, integer, text),
    pgauth.worker_start(text, integer, integer),
    pgauth.worker_gone(text, integer),
    pgauth.heartbeat(text, integer, integer, text),
    pgauth.authorize_viewer(bytea, text, text, text, text),
    pgauth.check_viewer_sessions(text[]),
    pgauth.viewer_done(bigint, text)
    TO pgauth_nginx;

COMMIT;
