/* The state store (SQLite, WAL): what has been migrated, so that re-running a
 * profile copies only what is new and a crash loses and duplicates nothing.
 *
 * Per (pipeline, mailbox, source folder, uidvalidity, uid) a row is first
 * written "pending" (before the sink sees the message), then "done" with the
 * sink folder and id, size, SHA-256 and Message-ID once the sink has made it
 * durable. Pending rows found at start-up are resolved with the sink's lookup.
 * Passwords never enter the state. Open one handle per worker thread. */
#ifndef GW_STATE_H
#define GW_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	const char *origin_key;  /* see gw_sink_item::origin_key */
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

/* After a UIDVALIDITY change: find a done record of an older uidvalidity of the
 * same folder with this Message-ID and size (and SHA-256 if given). */
bool gw_state_find_moved(struct gw_state *st, const struct gw_state_folder_key *key,
                         const char *message_id, uint64_t size, const char *sha256_hex, bool *found,
                         struct gw_state_record *out_copy_strings_owned_by_state, char **error);
/* Re-key a found record to the new (uidvalidity, uid) without copying anything. */
bool gw_state_rekey(struct gw_state *st, const struct gw_state_folder_key *key,
                    uint32_t old_uidvalidity, uint32_t old_uid, uint32_t new_uidvalidity,
                    uint32_t new_uid, char **error);

/* Count done records of a mailbox (reports, tests). */
bool gw_state_count_done(struct gw_state *st, const char *pipeline, const char *mailbox,
                         uint64_t *count, char **error);

#endif
