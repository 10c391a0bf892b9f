-- deploy/postgres/roles.sql - the egressscan database and its logins, as a superuser (or the
-- RDS/Aurora master user), before the first `egressscan migrate` (running it again is harmless):
--
--   psql "postgresql://admin@db.example.internal/postgres?sslmode=verify-full" \
--        -v scanner_password='...' -v grafana_password='...' -f deploy/postgres/roles.sql
--
-- egressscan          the scanner: owns the schema egressscan (migrate, scan, report, prune).
-- egressscan_reader   read the views, nothing else (no login: people and tools inherit it).
--                     Created here so that `migrate` can grant it without CREATEROLE.
-- grafana_egressscan  the dashboard's login, a member of egressscan_reader.
-- Analysts: CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE egressscan_reader;
--
-- In pg_hba.conf allow these users over TLS only, e.g.
--   hostssl egressscan egressscan,grafana_egressscan,+egressscan_reader 10.0.0.0/8 scram-sha-256
-- (on RDS: set rds.force_ssl = 1). Clients connect with sslmode=verify-full.

\set ON_ERROR_STOP on

-- Each object only when it is missing, so that running the file again changes nothing (and a
-- cluster where an earlier migrate already created egressscan_reader is fine).
SELECT format('CREATE ROLE egressscan LOGIN PASSWORD %L', :'scanner_password')
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'egressscan') \gexec
SELECT 'CREATE ROLE egressscan_reader NOLOGIN'
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'egressscan_reader') \gexec
SELECT format('CREATE ROLE grafana_egressscan LOGIN PASSWORD %L IN ROLE egressscan_reader',
              :'grafana_password')
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'grafana_egressscan') \gexec
SELECT 'CREATE DATABASE egressscan OWNER egressscan'
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = 'egressscan') \gexec
REVOKE ALL ON DATABASE egressscan FROM PUBLIC;
GRANT CONNECT ON DATABASE egressscan TO egressscan_reader;

\connect egressscan
-- Nobody but the owner creates objects (PostgreSQL 15 already says so for schema public).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
