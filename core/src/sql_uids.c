/* See sql_uids.h. */
#include "sql_uids.h"

#include <stdlib.h>

#include "util.h"

int gw_sql_collect_uids(sqlite3_stmt *stmt, uint32_t **uids, size_t *count)
{
	size_t n = 0, cap = 0;
	uint32_t *list = NULL;
	int rc;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? 2 * cap : 256;
			list = gw_xrealloc(list, cap * sizeof(*list));
		}
		list[n++] = (uint32_t)sqlite3_column_int64(stmt, 0);
	}
	sqlite3_reset(stmt);
	if (rc != SQLITE_DONE) {
		free(list);
		list = NULL;
		n = 0;
	}
	*uids = list;
	*count = n;
	return rc;
}
