/**
 * @file godwit/imap.h
 * @brief The core's IMAP client, offered to plugins through gw_host::imap.
 *
 * One implementation serves every IMAP-speaking plugin (imap, dovecot and
 * gmail sources; imap and exchange-online sinks). It does TLS (verified by
 * default), authentication, literal handling, modified UTF-7 folder names,
 * pipelining, timeouts and protocol traces with credentials redacted.
 * Folder names cross this API in UTF-8.
 */
#ifndef GODWIT_IMAP_H
#define GODWIT_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <godwit/host.h>
#include <godwit/source.h>
#include <godwit/status.h>
#include <godwit/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An IMAP connection (opaque). */
struct gw_imap;

/** Transport security. */
enum gw_imap_tls {
	GW_IMAP_TLS_IMPLICIT = 0, /**< TLS from the first byte (port 993). */
	GW_IMAP_TLS_STARTTLS,     /**< Plain connect, then STARTTLS before anything else. */
	GW_IMAP_TLS_NONE,         /**< No encryption; only when the profile says so explicitly. */
};

/** Authentication mechanisms. */
enum gw_imap_auth {
	GW_IMAP_AUTH_LOGIN = 0, /**< LOGIN command. */
	GW_IMAP_AUTH_PLAIN,   /**< AUTHENTICATE PLAIN, optionally with an authorization identity. */
	GW_IMAP_AUTH_XOAUTH2, /**< AUTHENTICATE XOAUTH2 with a bearer token. */
};

/** Where and how to connect. */
struct gw_imap_params {
	size_t struct_size;
	const char *host;
	uint16_t port; /**< 0: 993 for implicit TLS, else 143. */
	enum gw_imap_tls tls;
	bool tls_verify;         /**< Verify chain and host name (the default everywhere). */
	const char *ca_file;     /**< Extra trust anchors (PEM), or NULL for the system store. */
	uint32_t timeout_ms;     /**< Per read/write; 0 means 60 s. */
	uint64_t max_literal;    /**< Larger literals are refused; 0 means 64 MiB. */
	unsigned pipeline_depth; /**< Commands in flight when fetching; 0 means 16. */
	/** UIDs per body-fetch command (a UID set); 0 means 256, 1 fetches one message per
	 * command (for servers that mishandle sets). Added later: read only when
	 * struct_size covers it. */
	unsigned fetch_uids_per_command;
};

/** Who logs in. */
struct gw_imap_credentials {
	size_t struct_size;
	enum gw_imap_auth mechanism;
	const char *user;    /**< Authentication identity (the admin for a master login). */
	const char *secret;  /**< Password, or OAuth2 access token for XOAUTH2. Never logged. */
	const char *authzid; /**< PLAIN: the user to act as (master login); NULL otherwise. */
};

/** The personal namespace of the logged-in user (RFC 2342). */
struct gw_imap_namespace {
	size_t struct_size;
	const char *prefix; /**< UTF-8, e.g. "" or "INBOX."; owned by the connection. */
	char delimiter;     /**< Hierarchy delimiter; 0 for a flat namespace. */
};

/** What appending to one folder must respect (SELECT, STATUS, CAPABILITY). */
struct gw_imap_mailbox_info {
	size_t struct_size;
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t exists;
	uint64_t append_limit; /**< Largest message accepted (APPENDLIMIT); 0: none announced. */
	bool any_keyword;      /**< New keywords may be created ("\*" in PERMANENTFLAGS). */
	size_t permanent_count;
	const char *const *permanent_flags; /**< PERMANENTFLAGS; owned by the connection. */
};

/** Room for the text of a folder prepare_folders could not prepare. */
#define GW_IMAP_PREP_ERROR_MAX 256

/** One folder of prepare_folders (ABI 1.5): what to do, then what happened. */
struct gw_imap_folder_prep {
	size_t struct_size;
	const char *folder; /**< Full name in UTF-8. */
	bool create;        /**< CREATE it first (a folder that exists is success). */
	bool subscribe;     /**< SUBSCRIBE it if CREATE made it. */
	gw_status status;   /**< Out: GW_OK, or GW_ERR_FOLDER with @c error. */
	bool created;       /**< Out: CREATE made it. */
	char error[GW_IMAP_PREP_ERROR_MAX]; /**< Out: why not, with the server's text. */
	struct gw_imap_mailbox_info info;   /**< Out, as mailbox_info; the caller sets
	                                         info.struct_size. */
};

/** One message to APPEND. */
struct gw_imap_append {
	size_t struct_size;
	const char *folder;        /**< Full name in UTF-8. */
	const unsigned char *data; /**< The exact bytes, sent as one literal. */
	size_t size;
	uint32_t flags; /**< enum gw_flag bits (GW_FLAG_FORWARDED is $Forwarded). */
	size_t keyword_count;
	const char *const *keywords;
	bool has_internal_date;
	int64_t internal_date; /**< Seconds since the epoch (UTC)... */
	int32_t tz_offset_min; /**< ...written in this zone, minutes east of UTC. */
	void *user;            /**< Handed back in the result. */
	/** Since ABI 1.1: the same bytes are also in a file, @c file_fd from offset 0
	 * (gw_message::file_fd); a large literal is then read from there in chunks and
	 * @c data is not touched. */
	bool in_file;
	int file_fd;
};

/** The outcome of one APPEND, known when its tagged response arrives. */
struct gw_imap_append_result {
	size_t struct_size;
	void *user;                /**< gw_imap_append::user */
	gw_status status;          /**< GW_OK; MESSAGE ([TOOBIG], [LIMIT], other NO); MAILBOX
	                                ([OVERQUOTA]); FOLDER ([TRYCREATE]); THROTTLED; SESSION. */
	uint32_t uidvalidity;      /**< From APPENDUID (UIDPLUS); 0 if the server sent none. */
	uint32_t uid;              /**< From APPENDUID; 0 if the server sent none. */
	uint32_t retry_after_ms;   /**< With GW_ERR_THROTTLED: the pause the server asked for. */
	const char *text;          /**< The server's text of a refusal; "" on success. */
	const char *dropped_flags; /**< Flags left out (not in PERMANENTFLAGS, not an atom); "". */
};

/**
 * Receives the result of an APPEND. Called from whichever call on the
 * connection reads the tagged response (append, append_wait or any other
 * command), once per message that append() accepted. Not necessarily in the
 * order of the append() calls: a MULTIAPPEND refused as a whole is retried one
 * message at a time; match results by @c user.
 */
typedef void (*gw_imap_append_cb)(void *arg, const struct gw_imap_append_result *result);

/** Receives one UID of a search result. */
typedef void (*gw_imap_uid_cb)(void *arg, uint32_t uid);

/** The IMAP client's operations. */
struct gw_imap_api {
	size_t struct_size;

	/** Connect, negotiate TLS as asked, read the greeting and capabilities. */
	gw_status (*connect)(struct gw_ctx *ctx, const struct gw_imap_params *params,
	                     struct gw_imap **out);
	/** Authenticate. Refuses to send credentials over an unencrypted link unless tls was NONE.
	 */
	gw_status (*login)(struct gw_imap *imap, const struct gw_imap_credentials *credentials);
	/** True if the server advertised @p capability (case-insensitive, e.g. "UIDPLUS"). */
	bool (*has_capability)(struct gw_imap *imap, const char *capability);
	/** LIST every folder (with SPECIAL-USE roles where advertised), names in UTF-8. */
	gw_status (*list)(struct gw_imap *imap, gw_folder_cb cb, void *arg);
	/** SELECT (or EXAMINE when @p read_only) a folder given in UTF-8. */
	gw_status (*select)(struct gw_imap *imap, const char *folder, bool read_only,
	                    struct gw_folder_status *status);
	/** UID FETCH uid_min:* (UID RFC822.SIZE INTERNALDATE FLAGS ...) of the selected folder, one
	 * pass. */
	gw_status (*scan)(struct gw_imap *imap, const struct gw_scan_request *request,
	                  gw_meta_cb cb, void *arg);
	/** UID FETCH BODY.PEEK[] of the given UIDs, pipelined, streamed into @p target in request
	 * order. */
	gw_status (*fetch)(struct gw_imap *imap, const struct gw_fetch_request *request,
	                   const struct gw_fetch_target *target);
	/** Text of the last tagged NO/BAD or BYE, for error messages; "" if none. */
	const char *(*last_response)(struct gw_imap *imap);
	/** LOGOUT (best effort) and free; NULL is a no-op. */
	void (*close)(struct gw_imap *imap);

	/* ---- for sinks (appended; test with GW_IMAP_HAS) ---- */

	/** The personal namespace: NAMESPACE where advertised, else LIST "" "" (prefix ""). */
	gw_status (*get_namespace)(struct gw_imap *imap, struct gw_imap_namespace *ns);
	/**
	 * CREATE a folder given in UTF-8. An existing folder ([ALREADYEXISTS]) is
	 * success with *created false; a refused name is GW_ERR_FOLDER with the
	 * server's text. @p created may be NULL.
	 */
	gw_status (*create)(struct gw_imap *imap, const char *folder, bool *created);
	/** SUBSCRIBE a folder given in UTF-8. */
	gw_status (*subscribe)(struct gw_imap *imap, const char *folder);
	/**
	 * SELECT @p folder (read-write: only then PERMANENTFLAGS are meaningful) and
	 * learn what APPEND must respect there; STATUS (APPENDLIMIT) where the
	 * server announces per-folder limits. Remembered for append().
	 */
	gw_status (*mailbox_info)(struct gw_imap *imap, const char *folder,
	                          struct gw_imap_mailbox_info *info);
	/**
	 * Send one message: flags filtered by the folder's PERMANENTFLAGS,
	 * INTERNALDATE in the message's own zone, the bytes as a non-synchronising
	 * literal where LITERAL+ (or LITERAL- up to 4096 bytes) allows, else after the
	 * server's continuation. Where the server offers MULTIAPPEND, messages up to
	 * 2 MiB for the same folder may share one APPEND command (ended by the next
	 * other command or append_wait). Up to pipeline_depth commands stay in
	 * flight; when full, this waits for the oldest. GW_OK: the message went out and @p cb will
	 * receive its result. Otherwise it was not sent (or the connection failed) and
	 * @p cb is not called for it: GW_ERR_MESSAGE for a message over the folder's
	 * APPENDLIMIT (never sent), or the status of a refusal of the command itself.
	 */
	gw_status (*append)(struct gw_imap *imap, const struct gw_imap_append *message,
	                    gw_imap_append_cb cb, void *arg);
	/**
	 * Wait until every APPEND in flight has its tagged response (results are
	 * delivered to their callbacks). GW_ERR_SESSION if the connection failed
	 * first: the APPENDs without a result may or may not have been stored.
	 */
	gw_status (*append_wait)(struct gw_imap *imap);
	/**
	 * UID SEARCH in the selected folder. @p criteria is IMAP search syntax
	 * (quoted strings only, no literals), e.g. `HEADER Message-ID "<a@b>"`.
	 */
	gw_status (*search)(struct gw_imap *imap, const char *criteria, gw_imap_uid_cb cb,
	                    void *arg);
	/** UID FETCH (UID RFC822.SIZE INTERNALDATE FLAGS) of the given UIDs of the selected folder.
	 */
	gw_status (*fetch_meta)(struct gw_imap *imap, const uint32_t *uids, size_t count,
	                        gw_meta_cb cb, void *arg);

	/* ---- ABI 1.2 ---- */

	/**
	 * fetch for several folders (requests[i].folder, UTF-8 server names) in one
	 * pipeline: each folder's EXAMINE is sent with its UID FETCH commands, and the
	 * next folder's while the current one's bodies still arrive, so a folder switch
	 * costs no round trip of its own. See gw_source_ops::fetch_folders.
	 */
	gw_status (*fetch_folders)(struct gw_imap *imap, const struct gw_fetch_request *requests,
	                           size_t count, const struct gw_fetch_target *target);
	/** scan for several folders in one pipeline: each folder's EXAMINE and its
	 * UID FETCH 1:* are sent without waiting. See gw_source_ops::scan_folders. */
	gw_status (*scan_folders)(struct gw_imap *imap, const struct gw_scan_request *requests,
	                          size_t count, const struct gw_scan_target *target);

	/* ---- ABI 1.5 ---- */

	/**
	 * create, subscribe and mailbox_info for several folders, the commands of
	 * each step pipelined: three round trips for all of them, where one folder
	 * at a time takes up to three per folder. Each request's outcome is in its
	 * own fields (what mailbox_info learns is remembered for append() as
	 * there); a folder the server refuses fails alone. Returns GW_OK unless
	 * the connection failed or the server throttles (then no outcome counts).
	 */
	gw_status (*prepare_folders)(struct gw_imap *imap, struct gw_imap_folder_prep *requests,
	                             size_t count);
};

/** True if @p api is new enough to have @p member. */
#define GW_IMAP_HAS(api, member)                                                                   \
	((api)->struct_size >= offsetof(struct gw_imap_api, member) + sizeof((api)->member) &&     \
	 (api)->member != NULL)

#ifdef __cplusplus
}
#endif
#endif
