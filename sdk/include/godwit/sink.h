/**
 * @file godwit/sink.h
 * @brief Operations of a sink plugin (where mail goes).
 *
 * Order of calls per mailbox: open, ensure_folder (and size_limit, if the
 * sink has it) for every folder, then lookup for messages an earlier run left
 * uncommitted, then append any number of times with flush after each batch,
 * then close. The core commits its state only after flush returned GW_OK, so
 * a sink must not report a batch durable before it is. A sink with
 * flush_begin/flush_wait (ABI 1.3) is flushed in the background instead: the
 * core commits a batch once flush_wait returned GW_OK, while it appends the
 * next.
 *
 * With GW_CAP_PARALLEL_SESSIONS (plugin.h) on both plugins, a mailbox may have
 * further sessions open at the same time, each on a thread of its own. Each
 * calls ensure_folder only for folders the first session has ensured already,
 * then append and flush; lookup stays with the first session. No folder is
 * written by two sessions at once, so per-folder files (a keyword table, say)
 * need no locking, but anything a sink keeps per mailbox must allow two
 * sessions.
 */
#ifndef GODWIT_SINK_H
#define GODWIT_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <godwit/host.h>
#include <godwit/status.h>
#include <godwit/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Maximum length (with NUL) of folder ids and message ids a sink returns. */
#define GW_SINK_ID_MAX 256

/** Maximum length (with NUL) of a reason in struct gw_sink_outcome. */
#define GW_SINK_REASON_MAX 512

/**
 * The fate of one appended item, set by the sink between append() returning
 * GW_OK and flush() returning. The core sets @c status to GW_OK before
 * append() and keeps the struct valid until the batch is committed.
 */
struct gw_sink_outcome {
	size_t struct_size;
	/**
	 * GW_OK: the item is (or becomes, with flush) durable. Any other value: the
	 * sink did not store this item (GW_ERR_MESSAGE for a refusal of this message
	 * alone); the core records it as failed with @c reason and makes the other
	 * items of the batch durable as usual. Troubles wider than one message are
	 * still returned by flush() itself.
	 */
	gw_status status;
	/** Why, for the report (e.g. the server's text); NUL-terminated. */
	char reason[GW_SINK_REASON_MAX];
};

/** A message to write, plus the key that identifies its origin. */
struct gw_sink_item {
	size_t struct_size;
	const struct gw_message *message;
	/**
	 * Short stable token ([a-z0-9], <= 32 chars) for (pipeline, mailbox, source
	 * folder, uidvalidity, uid). A sink that can store it beside the message
	 * (a Maildir file name, a Graph extended property) lets lookup() find a
	 * message written before a crash without touching the message bytes.
	 */
	const char *origin_key;

	/* ---- added after ABI 1.0: read or write them only if struct_size covers them ---- */

	/**
	 * append() and flush(): where the sink reports this item's fate when it is
	 * known only after append() returned GW_OK (a pipelined APPEND refused
	 * later). NULL if the core offers no such report (an older core).
	 */
	struct gw_sink_outcome *outcome;
	/**
	 * lookup() only: ids (as this sink returned them) of messages of this sink
	 * folder that the core's state already records for other source messages
	 * with the same Message-ID and size. lookup() must not answer with one of
	 * them: with exact duplicates in a folder, each source message matches a
	 * copy of its own or none. May be NULL when @c recorded_count is 0.
	 */
	const char *const *recorded_ids;
	size_t recorded_count;
};

/** True if @p item is new enough to have @p member. */
#define GW_SINK_ITEM_HAS(item, member)                                                             \
	((item)->struct_size >= offsetof(struct gw_sink_item, member) + sizeof((item)->member))

/** Maximum length (with NUL) of the text size_limit() gives for its limit. */
#define GW_SINK_LIMIT_TEXT_MAX 128

/** Sink operation table. */
struct gw_sink_ops {
	size_t struct_size;

	/** Once per pipeline, after options are bound. Optional. */
	gw_status (*init)(const struct gw_host *host, struct gw_ctx *ctx, const void *config,
	                  void **state);
	/** Undo init. Optional. */
	void (*fini)(void *state);

	/** Connect/open for one mailbox. */
	gw_status (*open)(void *state, struct gw_ctx *ctx, const struct gw_mailbox *mailbox,
	                  void **session);

	/**
	 * Create @p path if missing and return a handle for append.
	 * @p folder_id receives a stable printable id (e.g. ".Archive.2019") used
	 * in state and reports; two paths with the same id are a collision the
	 * core reports.
	 */
	gw_status (*ensure_folder)(void *session, const struct gw_folder_path *path, void **folder,
	                           char folder_id[GW_SINK_ID_MAX]);

	/**
	 * Write one message; @p message_id receives the sink's id for it (file name, UID).
	 * A sink that pipelines (imap: APPENDUID arrives with the tagged OK) may fill
	 * @p message_id later, at the latest before flush returns GW_OK: the core keeps
	 * the buffer valid and unread until the batch is committed.
	 * GW_ERR_MESSAGE: this message was not written (the rest goes on). A refusal
	 * of this message alone that arrives after append() returned GW_OK goes into
	 * @c item->outcome (when present), not into flush's status.
	 */
	gw_status (*append)(void *session, void *folder, const struct gw_sink_item *item,
	                    char message_id[GW_SINK_ID_MAX]);

	/**
	 * Was the item with this origin (appended before a crash, state not yet
	 * committed) already written? The core fetches the message from the source
	 * again first, so @c item->message carries the exact bytes, their SHA-256,
	 * the size, the internal date and the Message-ID (NULL if it has none), as
	 * for append(). A sink matches by what it can prove (its origin key, or the
	 * bytes), never answers with one of @c item->recorded_ids, and gives each of
	 * its own messages to one lookup at most. Optional: without it the core may
	 * write a message again after a crash, and says so in the report.
	 */
	gw_status (*lookup)(void *session, void *folder, const struct gw_sink_item *item,
	                    bool *found, char message_id[GW_SINK_ID_MAX]);

	/**
	 * Make everything appended so far durable. GW_OK: every item appended since
	 * the last flush is durable, except those whose outcome says otherwise.
	 * Any other status: nothing of the batch is known durable (the core asks
	 * lookup() on the next run).
	 */
	gw_status (*flush)(void *session);

	/** Close the session (after a final flush if the core asked for one). Always succeeds. */
	void (*close)(void *session);

	/* ---- added after ABI 1.0 (the loader leaves missing entries NULL) ---- */

	/**
	 * The largest message, in bytes, the sink accepts in @p folder (a handle from
	 * ensure_folder); 0 if it has no limit. @p set_by receives who sets the
	 * limit, for the report (e.g. "destination APPENDLIMIT 60000"). The core
	 * asks once per folder after ensure_folder and skips larger messages before
	 * fetching them, reported as too large like messages over max_size.
	 * Optional.
	 */
	uint64_t (*size_limit)(void *session, void *folder, char set_by[GW_SINK_LIMIT_TEXT_MAX]);

	/* ---- added in ABI 1.3 ---- */

	/**
	 * Start making everything appended since the last flush durable, and return
	 * without waiting for it: the core goes on appending the next batch while
	 * the sink flushes this one (on a thread of its own, say), and calls
	 * flush_wait() before the next flush_begin(), flush() or close(). Appends
	 * made after flush_begin() belong to the next flush. GW_OK: begun; any other
	 * status: nothing was begun and nothing of the batch is known durable.
	 * Optional, together with flush_wait; a sink without them is flushed with
	 * flush() and the core waits.
	 */
	gw_status (*flush_begin)(void *session);

	/**
	 * Wait for the flush flush_begin() started; the result means what flush()'s
	 * would, for the items appended before that flush_begin(). Called at most
	 * once per flush_begin().
	 */
	gw_status (*flush_wait)(void *session);

	/* ---- added in ABI 1.5 ---- */

	/**
	 * The folders ensure_folder() is about to be asked for on this session, so
	 * that a sink can prepare them together: over a network, a round trip or
	 * three per folder become a few for all of them. A hint: each folder's
	 * outcome is what ensure_folder() then returns for it (a folder that
	 * cannot be prepared fails there, not here). Any status but GW_OK means the
	 * session failed. Optional.
	 */
	gw_status (*prepare_folders)(void *session, const struct gw_folder_path *const *paths,
	                             size_t count);
};

/** True if @p ops is new enough to have @p member and sets it. */
#define GW_SINK_HAS(ops, member)                                                                   \
	((ops)->struct_size >= offsetof(struct gw_sink_ops, member) + sizeof((ops)->member) &&     \
	 (ops)->member != NULL)

#ifdef __cplusplus
}
#endif
#endif
