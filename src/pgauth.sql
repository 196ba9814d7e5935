-- ngx_rtmp_pgauth: the database side.
--
-- Apply as a superuser (or the database owner with CREATEROLE); safe to
-- apply again: every object is created if missing, upgraded or replaced.
--
--     psql -d DBNAME -f pgauth.sql
--
-- Stream keys are stored as SHA-256 digests only.  nginx connects as the
-- role pgauth_nginx, which may execute the functions nginx calls and read
-- nothing else:
--
--     ALTER ROLE pgauth_nginx WITH LOGIN PASSWORD '...';
--
-- Live control: every change that takes a key's right away (disable,
-- delete, expiry moved to the past) ends the key's live sessions and sends
-- NOTIFY on the channel in pgauth.settings ('pgauth'), payload
-- 'end <session id> <reason>'; the nginx worker holding the session closes
-- it.  An expiry moved into the future sends 'recheck'.  Any change of a
-- key sends 'key <hex SHA-256 digest>': nginx's decision caches drop it.

BEGIN;

CREATE SCHEMA IF NOT EXISTS pgauth;
REVOKE ALL ON SCHEMA pgauth FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgauth_nginx') THEN
        CREATE ROLE pgauth_nginx NOLOGIN;
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
    key_id       bigint REFERENCES pgauth.stream_keys (id) ON DELETE SET NULL,
    stream_name  text NOT NULL,
    app          text NOT NULL,
    client_addr  text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    ended_at     timestamptz
);

ALTER TABLE pgauth.sessions
    ADD COLUMN IF NOT EXISTS node text,
    ADD COLUMN IF NOT EXISTS worker_pid integer,
    ADD COLUMN IF NOT EXISTS end_reason text;

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
-- publish its streams again at once.
CREATE TABLE IF NOT EXISTS pgauth.workers (
    node         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    seen_at      timestamptz NOT NULL DEFAULT now(),
    heartbeat    interval NOT NULL,
    PRIMARY KEY (node, pid)
);


-- Old signatures, replaced below.
DROP FUNCTION IF EXISTS pgauth.authorize(bytea, text, text, text);
DROP FUNCTION IF EXISTS pgauth.publish_done(bigint);


-- The first 8 hex digits of the digest: what nginx logs as fp=.
CREATE OR REPLACE FUNCTION pgauth.fingerprint(key_digest bytea)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT substr(encode(key_digest, 'hex'), 1, 8)
$$;


-- A new key for stream_name, valid in application app, returned once:
-- only its digest is kept.  40 hex digits holding 154 random bits (all of
-- one UUIDv4's and 32 of another's), safe to paste anywhere.
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
    secret text;
BEGIN
    secret := substr(replace(gen_random_uuid()::text, '-', '')
                     || replace(gen_random_uuid()::text, '-', ''), 1, 40);

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

    IF reason IS NOT NULL THEN
        PERFORM pgauth.end_session(s.id, reason)
        FROM pgauth.sessions s
        WHERE s.key_id = OLD.id AND s.ended_at IS NULL;
    END IF;

    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;

    RETURN NEW;
END
$$;

-- BEFORE: a deleted key's sessions still name it (the foreign key clears
-- key_id afterwards)
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
SET search_path = pg_catalog, pg_temp
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

    DELETE FROM pgauth.workers w
    WHERE w.seen_at < now() - 3 * w.heartbeat
      AND NOT EXISTS (SELECT FROM pgauth.sessions s
                      WHERE s.node = w.node AND s.worker_pid = w.pid
                        AND s.ended_at IS NULL);
$$;


-- Used by nginx's default pgauth_query: a row when the key may publish in
-- app, with the public name to publish under, the new session's id and
-- how many seconds it may last (NULL: no limit).  The session belongs to
-- the worker named by the connection's pgauth.node and pgauth.worker
-- settings (nginx sets them).  Another live publisher of the same name is
-- ended when duplicate is 'takeover'; with 'refuse' this one is refused
-- with SQLSTATE PA001.
CREATE OR REPLACE FUNCTION pgauth.authorize(
    key_digest bytea,
    app text,
    client_addr text,
    args text,
    duplicate text DEFAULT 'takeover')
RETURNS TABLE (stream_name text, session_id bigint,
               valid_for double precision)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k     pgauth.stream_keys%ROWTYPE;
    node  text := nullif(current_setting('pgauth.node', true), '');
    pid   integer := nullif(current_setting('pgauth.worker', true), '')::int;
    other record;
BEGIN
    SELECT * INTO k
    FROM pgauth.stream_keys sk
    WHERE sk.key_digest = authorize.key_digest
      AND sk.app = authorize.app
      AND sk.enabled
      AND (sk.expires_at IS NULL OR sk.expires_at > now());

    IF NOT FOUND THEN
        RETURN;
    END IF;

    -- one decision at a time per stream name, on every node
    PERFORM pg_advisory_xact_lock(hashtext(k.app || '/' || k.stream_name));

    FOR other IN
        SELECT s.id, w.seen_at < now() - 3 * w.heartbeat AS lost
        FROM pgauth.sessions s
        LEFT JOIN pgauth.workers w
               ON w.node = s.node AND w.pid = s.worker_pid
        WHERE s.stream_name = k.stream_name AND s.app = k.app
          AND s.ended_at IS NULL
    LOOP
        IF other.lost THEN
            PERFORM pgauth.end_session(other.id, 'node lost');
        ELSIF authorize.duplicate = 'refuse' THEN
            RAISE EXCEPTION 'stream "%" is already live', k.stream_name
                USING ERRCODE = 'PA001';
        ELSE
            PERFORM pgauth.end_session(other.id, 'takeover');
        END IF;
    END LOOP;

    INSERT INTO pgauth.sessions
        (key_id, stream_name, app, client_addr, node, worker_pid)
    VALUES
        (k.id, k.stream_name, k.app, authorize.client_addr, node, pid)
    RETURNING id INTO session_id;

    stream_name := k.stream_name;
    valid_for := pgauth.valid_for(k.expires_at, k.max_session, now());

    RETURN NEXT;
END
$$;


-- Used by nginx's default pgauth_done_query when a publish ends.
CREATE OR REPLACE FUNCTION pgauth.publish_done(
    session_id bigint,
    reason text DEFAULT 'unpublish')
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE pgauth.sessions
    SET ended_at = now(), end_reason = coalesce(reason, 'unpublish')
    WHERE id = publish_done.session_id AND ended_at IS NULL
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
    LEFT JOIN pgauth.sessions s ON s.id::text = i.id
    LEFT JOIN pgauth.stream_keys k ON k.id = s.key_id
$$;


-- A worker with live control has started: register it and return the
-- pids of the other workers registered for its node; nginx ends those
-- whose process is gone with worker_gone().
CREATE OR REPLACE FUNCTION pgauth.worker_start(
    node text, pid integer, heartbeat_ms integer)
RETURNS SETOF integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO pgauth.workers AS w (node, pid, heartbeat)
    VALUES (worker_start.node, worker_start.pid,
            worker_start.heartbeat_ms * interval '1 millisecond')
    ON CONFLICT ON CONSTRAINT workers_pkey DO UPDATE
        SET seen_at = now(), heartbeat = EXCLUDED.heartbeat;

    RETURN QUERY
        SELECT w.pid FROM pgauth.workers w
        WHERE w.node = worker_start.node AND w.pid <> worker_start.pid
        UNION
        SELECT DISTINCT s.worker_pid FROM pgauth.sessions s
        WHERE s.node = worker_start.node AND s.ended_at IS NULL
          AND s.worker_pid <> worker_start.pid;
END
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

    DELETE FROM pgauth.workers w
    WHERE w.node = worker_gone.node AND w.pid = worker_gone.pid;
$$;


CREATE OR REPLACE FUNCTION pgauth.heartbeat(
    node text, pid integer, heartbeat_ms integer)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO pgauth.workers AS w (node, pid, heartbeat)
    VALUES (heartbeat.node, heartbeat.pid,
            heartbeat.heartbeat_ms * interval '1 millisecond')
    ON CONFLICT (node, pid) DO UPDATE
        SET seen_at = now(), heartbeat = EXCLUDED.heartbeat;

    SELECT pgauth.sweep_lost();
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


-- Only the owner (the role applying this file) administers keys; nginx's
-- role runs the functions nginx needs and sees no table.
REVOKE ALL ON ALL TABLES IN SCHEMA pgauth FROM PUBLIC, pgauth_nginx;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgauth FROM PUBLIC, pgauth_nginx;

GRANT USAGE ON SCHEMA pgauth TO pgauth_nginx;
GRANT EXECUTE ON FUNCTION
    pgauth.authorize(bytea, text, text, text, text),
    pgauth.publish_done(bigint, text),
    pgauth.check_sessions(text[]),
    pgauth.worker_start(text, integer, integer),
    pgauth.worker_gone(text, integer),
    pgauth.heartbeat(text, integer, integer)
    TO pgauth_nginx;

COMMIT;
