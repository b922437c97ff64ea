/* The messages one attempt found in a mailbox, kept in a private temporary
 * SQLite database instead of an array: the scan of a 500,000-message mailbox
 * costs the process no more memory than one of 5,000 (SQLite's page cache and
 * sorter are bounded; beyond them it writes temporary files). The caps
 * (size, date, count) and the newest-first order are applied in SQL, and the
 * copy walks the selection with one cursor per lane.
 *
 * One selection per attempt. The scan and the rules run on one thread; then
 * each lane's cursor may be walked from its own thread. Functions returning
 * bool put one line in *error on failure (caller frees). */
#ifndef GW_SELECTION_H
#define GW_SELECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the selection knows about a message. Only GW_SEL_TODO messages are copied. */
enum gw_sel_state {
	GW_SEL_TODO = 0,
	GW_SEL_DONE,          /* in the state: already in the sink */
	GW_SEL_FAILED_BEFORE, /* failed earlier in this run: not tried again */
	GW_SEL_TOO_LARGE,
	GW_SEL_FILTERED, /* older than the profile's "since" */
	GW_SEL_OVER_CAP, /* beyond the newest max_count messages */
};

/* One scanned message. Keywords are indexes into the caller's keyword names. */
struct gw_sel_entry {
	int64_t internal_date;
	uint64_t size;
	uint32_t uid;
	uint32_t folder; /* the caller's folder index */
	int16_t tz_offset_min;
	uint8_t flags;
	uint8_t state; /* enum gw_sel_state */
	uint8_t keyword_count;
	const uint16_t *keywords;
};

struct gw_selection;

bool gw_selection_open(struct gw_selection **out, char **error);
void gw_selection_close(struct gw_selection *sel);

/* The scan of one folder: its entries are added between begin and end, and
 * kept only if end is called with @p keep (a scan that failed half-way adds
 * nothing). */
bool gw_selection_scan_begin(struct gw_selection *sel, char **error);
/* *added: false if the folder already had this UID (a server repeating
 * itself): the first one stays. */
bool gw_selection_add(struct gw_selection *sel, const struct gw_sel_entry *entry, bool *added,
                      char **error);
bool gw_selection_scan_end(struct gw_selection *sel, bool keep, char **error);

/* UIDs of the folder's GW_SEL_TODO entries, ascending; caller frees *uids. */
bool gw_selection_todo_uids(struct gw_selection *sel, uint32_t folder, uint32_t **uids,
                            size_t *count, char **error);
bool gw_selection_set_state(struct gw_selection *sel, uint32_t folder, uint32_t uid,
                            enum gw_sel_state state, char **error);

/* How gw_selection_apply narrows the GW_SEL_TODO entries down. */
struct gw_selection_rules {
	/* Per folder index, the largest size copied; 0: no limit. */
	const uint64_t *size_limits;
	size_t folder_count;
	int64_t since;      /* 0: no date filter */
	uint64_t max_count; /* newest messages kept, what earlier runs copied included; 0: all */
	/* Each entry the rules take out: its new state, and the size (too large) or
	 * date (filtered) that decided. */
	void (*skipped)(void *arg, uint32_t folder, uint32_t uid, enum gw_sel_state state,
	                uint64_t value);
	void *arg;
};

/* Once every folder is scanned: apply the rules, in this order: size, date,
 * then the count cap over the newest-first order. *todo: entries left to
 * copy. */
bool gw_selection_apply(struct gw_selection *sel, const struct gw_selection_rules *rules,
                        uint64_t *todo, char **error);

/* ---- lanes: the copy on several connections ---- */

/* Split the folders with entries left to copy into at most @p lanes lanes,
 * balanced by their bytes: the heaviest group first, each to the lightest
 * lane so far. Folders with the same @p group_of[folder] (a folder index:
 * those landing in one sink folder) share a lane, so each sink folder is
 * written by one session. *used: lanes that got folders (0 if nothing is left
 * to copy); they are numbered from 0. @p lane_of (optional, @p folder_count
 * entries): each folder's lane, GW_SEL_NO_LANE for one with nothing to copy.
 * Called again, it plans anew. */
#define GW_SEL_NO_LANE UINT32_MAX
bool gw_selection_plan_lanes(struct gw_selection *sel, const uint32_t *group_of,
                             size_t folder_count, unsigned lanes, unsigned *used, uint32_t *lane_of,
                             char **error);

/* A lane's cursor over its GW_SEL_TODO entries, newest first in slices: the
 * next @p slice_messages entries newest first (fewer where they would pass
 * @p slice_bytes; at least one), given folder by folder in ascending folder
 * index, each folder newest first (ties: later arrivals, higher UIDs, first).
 * Every entry of a slice is as new as any of the slices after it or newer,
 * and a source switches folders once a slice, not once a batch. The rules must be applied
 * and the lanes planned first. Each cursor is used by one thread at a time;
 * cursors of different lanes may be walked at the same time. Close every
 * cursor before the selection. */
struct gw_sel_cursor;
bool gw_sel_cursor_open(struct gw_selection *sel, unsigned lane, uint64_t slice_messages,
                        uint64_t slice_bytes, struct gw_sel_cursor **out, char **error);
void gw_sel_cursor_close(struct gw_sel_cursor *cursor);

/* The entry under the cursor (false at the end, *error NULL), valid until the
 * cursor moves; advance moves past it. No state changes while cursors run. */
bool gw_sel_cursor_peek(struct gw_sel_cursor *cursor, struct gw_sel_entry *entry, char **error);
void gw_sel_cursor_advance(struct gw_sel_cursor *cursor);

/* The folder's GW_SEL_TODO entries the cursor has not passed yet, in cursor
 * order (a folder that fails during the copy records each one). */
bool gw_sel_cursor_each_ahead(struct gw_sel_cursor *cursor, uint32_t folder,
                              void (*cb)(void *arg, const struct gw_sel_entry *entry), void *arg,
                              char **error);

#endif
