/* The state store (SQLite, WAL): what has been migrated, so that re-running a
 * profile copies only what is new and a crash loses and duplicates nothing.
 *
 * Per (pipeline, mailbox, source folder, uidvalidity, uid) a message is first
 * marked "pending" (before the sink sees it; a batch's marks are kept packed
 * per folder until it settles, state.c), then gets a "done" row with the
 * sink folder and id, size, SHA-256 and Message-ID once the sink has made it
 * durable. Pending rows found at start-up are resolved with the sink's lookup.
 * Passwords never enter the state. Open one handle per worker thread: a
 * handle is not shared between threads, several handles on one file are fine.
 * Functions returning bool put one line in *error on failure (caller frees). */
#ifndef GW_STATE_H
#define GW_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <godwit/sink.h>

/* Version of the schema this build writes; older files are migrated on open,
 * newer ones refused. */
#define GW_STATE_SCHEMA_VERSION 2
/* Room for an origin key (gw_sink_item::origin_key is at most 32 chars). */
#define GW_STATE_KEY_MAX 64

struct gw_state;

/* Identifies one source folder of one mailbox of one pipeline. */
struct gw_state_folder_key {
	const char *pipeline;
	const char *mailbox; /* email */
	const char *folder;  /* source folder name, UTF-8 */
};

/* One migrated (or pending) message. */
struct gw_state_record {
	uint32_t uidvalidity;
	uint32_t uid;
	const char *origin_key;  /* see gw_sink_item::origin_key; may be NULL */
	const char *sink_folder; /* sink folder id; NULL while pending */
	const char *sink_id;     /* sink message id; NULL while pending */
	uint64_t size;
	const char *sha256_hex; /* NULL while pending */
	const char *message_id; /* may be NULL */
	int64_t internal_date;
};

/* Opens (creating if needed) and migrates the schema. */
bool gw_state_open(const char *path, struct gw_state **out, char **error);
void gw_state_close(struct gw_state *st);

/* The UIDVALIDITY recorded for the folder (0 if never seen). */
bool gw_state_folder_uidvalidity(struct gw_state *st, const struct gw_state_folder_key *key,
                                 uint32_t *uidvalidity, char **error);
bool gw_state_set_folder_uidvalidity(struct gw_state *st, const struct gw_state_folder_key *key,
                                     uint32_t uidvalidity, char **error);

/* UIDs already done for (key, uidvalidity), ascending; caller frees *uids. */
bool gw_state_done_uids(struct gw_state *st, const struct gw_state_folder_key *key,
                        uint32_t uidvalidity, uint32_t **uids, size_t *count, char **error);

/* Several writes in one transaction: between begin and commit, mark_pending,
 * mark_done and drop_pending (any folders) write into it instead of
 * committing each; a failed write rolls the whole group back and commit then
 * fails. @p full_sync: commit with synchronous=FULL (required for pending
 * marks, see state.c). One group at a time per handle. */
bool gw_state_group_begin(struct gw_state *st, bool full_sync, char **error);
bool gw_state_group_commit(struct gw_state *st, char **error);

/* Write records as pending, in one transaction (before the sink sees them). */
bool gw_state_mark_pending(struct gw_state *st, const struct gw_state_folder_key *key,
                           const struct gw_state_record *records, size_t count, char **error);
/* Pending records of the folder; @p cb is called for each (strings valid during the call). */
bool gw_state_pending(struct gw_state *st, const struct gw_state_folder_key *key,
                      void (*cb)(const struct gw_state_record *r, void *arg), void *arg,
                      char **error);
/* Mark records done (sink folder/id, hash, message-id filled), in one transaction. */
bool gw_state_mark_done(struct gw_state *st, const struct gw_state_folder_key *key,
                        const struct gw_state_record *records, size_t count, char **error);
/* Forget pending records that turned out never to have reached the sink. */
bool gw_state_drop_pending(struct gw_state *st, const struct gw_state_folder_key *key,
                           const uint32_t *uids, uint32_t uidvalidity, size_t count, char **error);

/* Sink folder and sink id of every done record of the folder with this
 * Message-ID (NULL: records without one) and size, any UIDVALIDITY: what a
 * sink's lookup must not hand out again after a crash. */
bool gw_state_done_sink_ids(struct gw_state *st, const struct gw_state_folder_key *key,
                            const char *message_id, uint64_t size,
                            void (*cb)(const char *sink_folder, const char *sink_id, void *arg),
                            void *arg, char **error);

/* A done record of an older UIDVALIDITY that matched (gw_state_find_moved). */
struct gw_state_moved {
	uint32_t uidvalidity; /* the old key, for gw_state_rekey */
	uint32_t uid;
	int64_t internal_date;
	char origin_key[GW_STATE_KEY_MAX];
	char sink_folder[GW_SINK_ID_MAX];
	char sink_id[GW_SINK_ID_MAX];
};

/* After a UIDVALIDITY change: find a done record of the same folder under a
 * UIDVALIDITY other than @p new_uidvalidity with this Message-ID (NULL matches
 * records without one) and size, and SHA-256 if @p sha256_hex is not NULL.
 * Without a Message-ID the SHA-256 is required (size alone proves nothing):
 * a NULL sha256_hex then finds nothing. Among several matches the earliest
 * migrated is returned, so calling find + rekey per message pairs duplicates
 * one to one. */
bool gw_state_find_moved(struct gw_state *st, const struct gw_state_folder_key *key,
                         uint32_t new_uidvalidity, const char *message_id, uint64_t size,
                         const char *sha256_hex, bool *found, struct gw_state_moved *out,
                         char **error);
/* Re-key a found done record to the new (uidvalidity, uid) without copying
 * anything. A pending record at the new key is replaced; a done one is an error. */
bool gw_state_rekey(struct gw_state *st, const struct gw_state_folder_key *key,
                    uint32_t old_uidvalidity, uint32_t old_uid, uint32_t new_uidvalidity,
                    uint32_t new_uid, char **error);

/* Count done records of a mailbox (reports, tests). */
bool gw_state_count_done(struct gw_state *st, const char *pipeline, const char *mailbox,
                         uint64_t *count, char **error);
/* Done records of a mailbox in the order they became done (ascending seq), with
 * their source folder; strings valid during the call. Reports and tests use it
 * to check that mail arrived newest first. */
bool gw_state_each_done(struct gw_state *st, const char *pipeline, const char *mailbox,
                        void (*cb)(const char *folder, const struct gw_state_record *r,
                                   uint64_t seq, void *arg),
                        void *arg, char **error);

/* Runs: one row per `godwit run`, for reports and post-mortems. */
bool gw_state_run_begin(struct gw_state *st, int64_t *run_id, char **error);
/* @p status: "completed", "partial", "failed" or "cancelled". */
bool gw_state_run_end(struct gw_state *st, int64_t run_id, const char *status, char **error);

#endif
