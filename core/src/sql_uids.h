/* One SQLite helper shared by the state and the selection: a statement's
 * first column read as a list of UIDs. */
#ifndef GW_SQL_UIDS_H
#define GW_SQL_UIDS_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

/* Step the bound @p stmt to its end, collecting column 0 into *uids (caller
 * frees; NULL and 0 on failure), then reset it. Returns SQLITE_DONE or the
 * failing step's code. */
int gw_sql_collect_uids(sqlite3_stmt *stmt, uint32_t **uids, size_t *count);

#endif
