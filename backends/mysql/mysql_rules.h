// What the mysql backend lets into the log, decided from a statement's text
// alone (libmariadb has no parser; sqlcommon's lexer finds the words).
//
// Every node runs the same statements on its own MariaDB database, so a
// statement must compute the same result from the same state everywhere. The
// backend makes the time (SET TIMESTAMP), RAND() (rand_seed1/2), the time
// zone and sql_mode the same on every node; what it cannot make the same is
// refused here, with an error that names it: functions that read the node,
// the connection or the clock behind SET TIMESTAMP's back (UUID(), SYSDATE(),
// CONNECTION_ID(), DATABASE(), VERSION(), USER(), ...), session state that
// outlives a command (@variables, SET, temporary tables, GET_LOCK), files on
// the server (LOAD DATA, INTO OUTFILE, LOAD_FILE), transaction control (the
// backend owns the transaction), other databases (db.table: each node has its
// own database) and the backend's own _synod_* tables.
//
// Statements are allowlisted: SELECT, INSERT, REPLACE, UPDATE, DELETE, WITH
// (data), and CREATE/ALTER/DROP TABLE|INDEX|VIEW, RENAME TABLE, TRUNCATE
// (schema). Schema statements commit implicitly in MariaDB, so a command with
// one must hold exactly that one statement (see mysql_store.h for why and what
// is guaranteed).
#pragma once

#include <string>
#include <string_view>

namespace synod::mysql {

enum class StatementKind { kData, kSchema };

// One write statement (no ';' inside: split first). False with *why when it
// is refused.
bool check_write_statement(std::string_view sql, StatementKind* kind, std::string* why);

// One read statement for query(): SELECT, WITH, SHOW, DESCRIBE, EXPLAIN,
// VALUES; no locking reads, no server files, no locks, no user variables, no
// _synod_* tables. False with *why when it is refused.
bool check_read_statement(std::string_view sql, std::string* why);

// A whole command (its JSON, sqlcommon::parse_command's shapes, or the
// checksum command): every statement passes check_write_statement, and a
// schema statement stands alone in its command. *schema: the command is one
// schema statement; *count (when not null): its number of statements. False
// with *why when it is refused.
bool check_command(std::string_view payload, bool* schema, std::string* why,
                   size_t* count = nullptr);

}  // namespace synod::mysql
