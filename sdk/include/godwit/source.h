/**
 * @file godwit/source.h
 * @brief Operations of a source plugin (where mail comes from).
 *
 * Every operation is a plain blocking call made on a worker thread. The core
 * never calls one session from two threads at once, and calls them in this
 * order: open, list_folders, then per folder select_folder, scan and fetch
 * (any number of times), then close.
 *
 * With GW_CAP_PARALLEL_SESSIONS (plugin.h) on both plugins, a mailbox may have
 * further sessions open at the same time, each on a thread of its own: they
 * are opened after the first session's scan, call list_folders too (its
 * folders are not used), then only select_folder and fetch the folders the
 * core gives them, without scan. A source
 * whose server refuses one more connection just fails that open: the core
 * copies those folders on the first session.
 */
#ifndef GODWIT_SOURCE_H
#define GODWIT_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include <godwit/host.h>
#include <godwit/status.h>
#include <godwit/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Called once per folder by list_folders; a non-GW_OK return stops the listing. */
typedef gw_status (*gw_folder_cb)(void *arg, const struct gw_folder_info *folder);

/** Called once per message by scan; a non-GW_OK return stops the scan. */
typedef gw_status (*gw_meta_cb)(void *arg, const struct gw_message_meta *meta);

/** What scan should report. */
enum gw_scan_want {
	GW_SCAN_MESSAGE_ID =
	        1u << 0, /**< Also fill gw_message_meta::message_id (costs a header read). */
};

/** Parameters of a scan of the selected folder. */
struct gw_scan_request {
	size_t struct_size;
	unsigned want;    /**< enum gw_scan_want bits. */
	uint32_t uid_min; /**< Only UIDs >= this (1 for all). */
	/** ABI 1.2, scan_folders only: the folder, as listed. */
	const char *folder;
};

/** ABI 1.2: what scan_folders reports, folder by folder, in request order. */
struct gw_scan_target {
	size_t struct_size;
	void *arg;
	/** requests[@p index]'s folder is open, @p status as its selection said; its messages
	 * follow. Non-GW_OK stops the scan. */
	gw_status (*folder_begin)(void *arg, size_t index, const struct gw_folder_status *status);
	/** One message of the folder begun last. Non-GW_OK stops the scan. */
	gw_meta_cb meta;
	/** requests[@p index] is done: GW_OK when every message was reported, else why not
	 * (GW_ERR_FOLDER: it could not be opened, then without folder_begin, or not read). */
	void (*folder_end)(void *arg, size_t index, gw_status status, const char *reason);
};

/**
 * Receives the bytes of fetched messages, one message at a time:
 * begin, data (any number of times), end; or failed instead of end.
 */
struct gw_fetch_target {
	size_t struct_size;
	void *arg;
	/** A message starts; @p size is its exact length. Non-GW_OK: the source skips its bytes. */
	gw_status (*begin)(void *arg, uint32_t uid, uint64_t size);
	/** The next bytes of the message, in order. */
	gw_status (*data)(void *arg, const void *bytes, size_t length);
	/** The message is complete. */
	gw_status (*end)(void *arg, uint32_t uid);
	/** The message could not be fetched (vanished, too large, refused); @p reason for the
	 * report. */
	void (*failed)(void *arg, uint32_t uid, gw_status status, const char *reason);
	/**
	 * ABI 1.2, fetch_folders only (required there): the callbacks that follow concern
	 * requests[@p index]. Called once per request reached, in order, before any of its
	 * messages. If its folder cannot be opened, failed() follows at once with uid 0 and
	 * GW_ERR_FOLDER, and none of its messages come; if its UIDVALIDITY is not the
	 * scan's, with uid 0 and GW_ERR_SESSION, and the fetch stops.
	 */
	void (*request)(void *arg, size_t index);
	/**
	 * ABI 1.4, optional: memory where the current message's next bytes may be
	 * placed, up to *length of them (NULL: none; valid until data() is called).
	 * A source that receives bytes straight into it passes that pointer to data(),
	 * which then keeps them where they are instead of copying them.
	 */
	void *(*room)(void *arg, size_t *length);
};

/** True if @p target is new enough to have @p member and sets it. */
#define GW_FETCH_TARGET_HAS(target, member)                                                        \
	((target)->struct_size >=                                                                  \
	         offsetof(struct gw_fetch_target, member) + sizeof((target)->member) &&            \
	 (target)->member != NULL)

/** Parameters of a fetch from the selected folder. */
struct gw_fetch_request {
	size_t struct_size;
	const uint32_t *uids; /**< Messages to fetch, in the order the core wants them delivered. */
	size_t count;
	uint64_t max_size; /**< Larger messages are reported through failed(), never buffered. */
	/** ABI 1.2, fetch_folders only: the folder (as listed) and the UIDVALIDITY the scan saw. */
	const char *folder;
	uint32_t uidvalidity;
};

/** Source operation table. */
struct gw_source_ops {
	size_t struct_size;

	/** Once per pipeline, after options are bound. @p config stays valid until fini. Optional.
	 */
	gw_status (*init)(const struct gw_host *host, struct gw_ctx *ctx, const void *config,
	                  void **state);
	/** Undo init. Optional. */
	void (*fini)(void *state);

	/** Connect and authenticate for one mailbox. */
	gw_status (*open)(void *state, struct gw_ctx *ctx, const struct gw_mailbox *mailbox,
	                  void **session);
	/** Report every folder of the mailbox. */
	gw_status (*list_folders)(void *session, gw_folder_cb cb, void *arg);
	/** Make @p folder (as listed) the current one, read-only. */
	gw_status (*select_folder)(void *session, const char *folder,
	                           struct gw_folder_status *status);
	/** Report metadata of the current folder's messages. */
	gw_status (*scan)(void *session, const struct gw_scan_request *request, gw_meta_cb cb,
	                  void *arg);
	/** Stream the exact bytes of messages of the current folder into @p target. */
	gw_status (*fetch)(void *session, const struct gw_fetch_request *request,
	                   const struct gw_fetch_target *target);
	/** Log out and free the session. Always succeeds. */
	void (*close)(void *session);
	/**
	 * ABI 1.2, optional: fetch from several folders in one call, requests[i].folder in
	 * order, each folder checked against requests[i].uidvalidity. This lets a source send
	 * the next folder's selection and fetch while the current one still streams, where
	 * select_folder and fetch each wait a round trip. A changed UIDVALIDITY is
	 * GW_ERR_SESSION (the core scans again) and nothing of that folder is delivered. Which
	 * folder is selected afterwards is unspecified: the core selects again before scan or
	 * fetch.
	 */
	gw_status (*fetch_folders)(void *session, const struct gw_fetch_request *requests,
	                           size_t count, const struct gw_fetch_target *target);
	/**
	 * ABI 1.2, optional: scan several folders in one call (requests[i].folder, in order),
	 * so a source can send the next folder's selection and scan while the current one's
	 * answers arrive. Which folder is selected afterwards is unspecified.
	 */
	gw_status (*scan_folders)(void *session, const struct gw_scan_request *requests,
	                          size_t count, const struct gw_scan_target *target);
};

/** True if @p ops is new enough to have @p member and sets it. */
#define GW_SOURCE_HAS(ops, member)                                                                 \
	((ops)->struct_size >= offsetof(struct gw_source_ops, member) + sizeof((ops)->member) &&   \
	 (ops)->member != NULL)

#ifdef __cplusplus
}
#endif
#endif
