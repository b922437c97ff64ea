/**
 * @file godwit/sink.h
 * @brief Operations of a sink plugin (where mail goes).
 *
 * Order of calls per mailbox: open, ensure_folder for every folder, then
 * append/lookup any number of times with flush after each batch, then close.
 * The core commits its state only after flush returned GW_OK, so a sink must
 * not report a batch durable before it is.
 */
#ifndef GODWIT_SINK_H
#define GODWIT_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include <godwit/host.h>
#include <godwit/status.h>
#include <godwit/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Maximum length (with NUL) of folder ids and message ids a sink returns. */
#define GW_SINK_ID_MAX 256

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
};

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
	 */
	gw_status (*append)(void *session, void *folder, const struct gw_sink_item *item,
	                    char message_id[GW_SINK_ID_MAX]);

	/**
	 * Was the item with this origin (appended before a crash, state not yet
	 * committed) already written? Optional: without it the core may write a
	 * message again after a crash, and says so in the report.
	 */
	gw_status (*lookup)(void *session, void *folder, const struct gw_sink_item *item,
	                    bool *found, char message_id[GW_SINK_ID_MAX]);

	/** Make everything appended so far durable. */
	gw_status (*flush)(void *session);

	/** Close the session (after a final flush if the core asked for one). Always succeeds. */
	void (*close)(void *session);
};

#ifdef __cplusplus
}
#endif
#endif
