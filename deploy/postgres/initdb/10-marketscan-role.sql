-- marketscan's own database role: every marketscan process connects as it, never as the
-- superuser. It may log in and owns the database it is run in (so the migrations can create
-- schemas, tables and partitions there), and nothing more: no superuser, no new roles or
-- databases, no replication, no bypassing row security.
--
-- The postgres image runs it once, on its first start, as POSTGRES_USER in POSTGRES_DB
-- (docker-compose.yml mounts this directory as /docker-entrypoint-initdb.d), reading the role
-- from the container's environment: MARKETSCAN_DB_USER and MARKETSCAN_DB_PASSWORD. Running it
-- again is safe, and is how a password is rotated or an older install adopted
-- (docs/operations.md, "Security"):
--
--   docker compose exec postgres sh -c \
--     'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f /docker-entrypoint-initdb.d/10-marketscan-role.sql'
--
-- Needs psql 15 or later (\getenv), as the postgres:16 image has.

\set ON_ERROR_STOP on
\getenv app_role MARKETSCAN_DB_USER
\getenv app_password MARKETSCAN_DB_PASSWORD
-- \getenv leaves an unset variable unset: read it as empty, which is refused below.
\if :{?app_role}
\else
  \set app_role ''
\endif
\if :{?app_password}
\else
  \set app_password ''
\endif

SELECT :'app_role' = '' AS no_role,
       :'app_password' = '' AS no_password,
       :'app_role' = current_user AS role_is_admin
\gset
\if :no_role
  DO $$ BEGIN RAISE EXCEPTION 'MARKETSCAN_DB_USER is not set: name the application''s role'; END $$;
\endif
\if :no_password
  DO $$ BEGIN RAISE EXCEPTION 'MARKETSCAN_DB_PASSWORD is not set: give the role a password'; END $$;
\endif
\if :role_is_admin
  -- Made NOSUPERUSER, the one account able to administer the server would be lost.
  DO $$ BEGIN RAISE EXCEPTION 'MARKETSCAN_DB_USER must differ from POSTGRES_USER (the superuser)'; END $$;
\endif

BEGIN;

SELECT format('CREATE ROLE %I', :'app_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role')
\gexec
-- Also when the role existed: whatever it was granted before, it is reduced to this.
ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
    NOBYPASSRLS INHERIT PASSWORD :'app_password';
ALTER DATABASE :"DBNAME" OWNER TO :"app_role";

-- An install from before this role kept its schema under the superuser: hand every object
-- of the database over, so the migrations (as the role) can alter what earlier ones made.
-- A fresh database has none of these. Extension members stay with their extension.
SELECT oid AS app_role_oid FROM pg_roles WHERE rolname = :'app_role'
\gset

SELECT format('ALTER SCHEMA %I OWNER TO %I', namespace.nspname, :'app_role')
  FROM pg_namespace AS namespace
 WHERE namespace.nspowner NOT IN (:app_role_oid, 'pg_database_owner'::regrole)
   AND namespace.nspname <> 'information_schema'
   AND namespace.nspname NOT LIKE 'pg\_%'
   AND NOT EXISTS (SELECT FROM pg_depend
                    WHERE objid = namespace.oid AND classid = 'pg_namespace'::regclass
                      AND deptype = 'e')
\gexec

-- Tables first: each takes its indexes and the sequences it owns along.
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE relation.relkind WHEN 'v' THEN 'VIEW'
                                    WHEN 'm' THEN 'MATERIALIZED VIEW'
                                    WHEN 'f' THEN 'FOREIGN TABLE'
                                    ELSE 'TABLE' END,
              namespace.nspname, relation.relname, :'app_role')
  FROM pg_class AS relation
  JOIN pg_namespace AS namespace ON namespace.oid = relation.relnamespace
 WHERE relation.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND relation.relowner <> :app_role_oid
   AND namespace.nspname <> 'information_schema'
   AND namespace.nspname NOT LIKE 'pg\_%'
   AND NOT EXISTS (SELECT FROM pg_depend
                    WHERE objid = relation.oid AND classid = 'pg_class'::regclass
                      AND deptype = 'e')
\gexec

SELECT format('ALTER SEQUENCE %I.%I OWNER TO %I', namespace.nspname, relation.relname,
              :'app_role')
  FROM pg_class AS relation
  JOIN pg_namespace AS namespace ON namespace.oid = relation.relnamespace
 WHERE relation.relkind = 'S'
   AND relation.relowner <> :app_role_oid
   AND namespace.nspname <> 'information_schema'
   AND namespace.nspname NOT LIKE 'pg\_%'
   AND NOT EXISTS (SELECT FROM pg_depend
                    WHERE objid = relation.oid AND classid = 'pg_class'::regclass
                      AND deptype = 'e')
\gexec

-- Enums, domains, ranges and free-standing composite types (a table's row type and every
-- array type follow their owner).
SELECT format('ALTER %s %s OWNER TO %I',
              CASE type.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
              type.oid::regtype, :'app_role')
  FROM pg_type AS type
  JOIN pg_namespace AS namespace ON namespace.oid = type.typnamespace
  LEFT JOIN pg_class AS relation ON relation.oid = type.typrelid
 WHERE type.typowner <> :app_role_oid
   AND (type.typtype IN ('e', 'd', 'r') OR relation.relkind = 'c')
   AND namespace.nspname <> 'information_schema'
   AND namespace.nspname NOT LIKE 'pg\_%'
   AND NOT EXISTS (SELECT FROM pg_depend
                    WHERE objid = type.oid AND classid = 'pg_type'::regclass
                      AND deptype = 'e')
\gexec

SELECT format('ALTER %s %s OWNER TO %I',
              CASE routine.prokind WHEN 'a' THEN 'AGGREGATE' ELSE 'ROUTINE' END,
              routine.oid::regprocedure, :'app_role')
  FROM pg_proc AS routine
  JOIN pg_namespace AS namespace ON namespace.oid = routine.pronamespace
 WHERE routine.proowner <> :app_role_oid
   AND namespace.nspname <> 'information_schema'
   AND namespace.nspname NOT LIKE 'pg\_%'
   AND NOT EXISTS (SELECT FROM pg_depend
                    WHERE objid = routine.oid AND classid = 'pg_proc'::regclass
                      AND deptype = 'e')
\gexec

COMMIT;
