-- The tables of Postfixadmin (PostgreSQL) that the directory reads, with
-- Postfixadmin's names and types; columns nothing here reads are left out.
CREATE TABLE domain (
  domain      varchar(255) NOT NULL PRIMARY KEY,
  description varchar(255) NOT NULL DEFAULT '',
  aliases     integer NOT NULL DEFAULT 0,
  mailboxes   integer NOT NULL DEFAULT 0,
  transport   varchar(255) DEFAULT NULL,
  backupmx    boolean NOT NULL DEFAULT false,
  created     timestamp with time zone DEFAULT now(),
  modified    timestamp with time zone DEFAULT now(),
  active      boolean NOT NULL DEFAULT true
);
CREATE TABLE mailbox (
  username   varchar(255) NOT NULL PRIMARY KEY,
  password   varchar(255) NOT NULL DEFAULT '',
  name       varchar(255) NOT NULL DEFAULT '',
  maildir    varchar(255) NOT NULL DEFAULT '',
  local_part varchar(255) NOT NULL,
  domain     varchar(255) NOT NULL REFERENCES domain ON DELETE CASCADE,
  created    timestamp with time zone DEFAULT now(),
  modified   timestamp with time zone DEFAULT now(),
  active     boolean NOT NULL DEFAULT true
);
CREATE TABLE alias_domain (
  alias_domain  varchar(255) NOT NULL PRIMARY KEY REFERENCES domain (domain) ON DELETE CASCADE,
  target_domain varchar(255) NOT NULL REFERENCES domain (domain) ON DELETE CASCADE,
  created       timestamp with time zone DEFAULT now(),
  modified      timestamp with time zone DEFAULT now(),
  active        boolean NOT NULL DEFAULT true
);
-- Postfixadmin keeps a pseudo-domain "ALL" for its superadmins.
INSERT INTO domain (domain, description) VALUES ('ALL', '');
