-- ngx_rtmp_pgauth: the database side.
--
-- Apply as a superuser (or the database owner with CREATEROLE); safe to
-- apply again: every object is created if missing or replaced.
--
--     psql -d DBNAME -f pgauth.sql
--
-- Stream keys are stored as SHA-256 digests only.  nginx connects as the
-- role pgauth_nginx, which may execute pgauth.authorize() and
-- pgauth.publish_done() and read nothing else:
--
--     ALTER ROLE pgauth_nginx WITH LOGIN PASSWORD '...';

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

CREATE INDEX IF NOT EXISTS sessions_live
    ON pgauth.sessions (stream_name) WHERE ended_at IS NULL;


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


-- Used by nginx's default pgauth_query: a row when the key may publish in
-- app, with the public name to publish under and the new session's id.
CREATE OR REPLACE FUNCTION pgauth.authorize(
    key_digest bytea,
    app text,
    client_addr text,
    args text)
RETURNS TABLE (stream_name text, session_id bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k pgauth.stream_keys%ROWTYPE;
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

    stream_name := k.stream_name;

    INSERT INTO pgauth.sessions (key_id, stream_name, app, client_addr)
    VALUES (k.id, k.stream_name, k.app, authorize.client_addr)
    RETURNING id INTO session_id;

    RETURN NEXT;
END
$$;


-- Used by nginx's default pgauth_done_query when a publish ends.
CREATE OR REPLACE FUNCTION pgauth.publish_done(session_id bigint)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE pgauth.sessions SET ended_at = now()
    WHERE id = publish_done.session_id AND ended_at IS NULL
$$;


-- Only the owner (the role applying this file) administers keys; nginx's
-- role runs the two functions nginx needs and sees no table.
REVOKE ALL ON ALL TABLES IN SCHEMA pgauth FROM PUBLIC, pgauth_nginx;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgauth FROM PUBLIC, pgauth_nginx;

GRANT USAGE ON SCHEMA pgauth TO pgauth_nginx;
GRANT EXECUTE ON FUNCTION pgauth.authorize(bytea, text, text, text)
    TO pgauth_nginx;
GRANT EXECUTE ON FUNCTION pgauth.publish_done(bigint) TO pgauth_nginx;

COMMIT;
