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
};

/** Who logs in. */
struct gw_imap_credentials {
	size_t struct_size;
	enum gw_imap_auth mechanism;
	const char *user;    /**< Authentication identity (the admin for a master login). */
	const char *secret;  /**< Password, or OAuth2 access token for XOAUTH2. Never logged. */
	const char *authzid; /**< PLAIN: the user to act as (master login); NULL otherwise. */
};

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
};

#ifdef __cplusplus
}
#endif
#endif
