/**
 * @file godwit/status.h
 * @brief Status codes returned by every plugin operation.
 *
 * A status carries its *scope*: it tells the core how far a failure reaches
 * and therefore what to do next (skip one message, skip a folder, reconnect,
 * give up on the mailbox, back off). The human-readable text goes through
 * gw_host::fail(), which also records the context (pipeline, mailbox,
 * folder, UID) the core adds.
 */
#ifndef GODWIT_STATUS_H
#define GODWIT_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/** Result of a plugin operation. Values are stable across ABI minors. */
typedef enum gw_status {
	GW_OK = 0,          /**< Success. */
	GW_ERR_MESSAGE = 1, /**< This message only: recorded as failed, the rest goes on. */
	GW_ERR_FOLDER = 2,  /**< This folder only: recorded, the other folders go on. */
	GW_ERR_SESSION = 3, /**< Connection-level (dropped, BYE, timeout): reconnect and retry with
	                       backoff. */
	GW_ERR_AUTH = 4,    /**< Credentials refused: final for this mailbox. */
	GW_ERR_CONFIG = 5,  /**< Configuration is wrong: final for this mailbox. */
	GW_ERR_THROTTLED =
	        6, /**< Server asked us to slow down; retry after gw_host::set_retry_after(). */
	GW_ERR_CANCELLED = 7, /**< The run is stopping (signal); unwind without side effects. */
	GW_ERR_MAILBOX =
	        8, /**< Mailbox-wide stop that is not auth (quota exceeded, mailbox missing). */
} gw_status;

/** Short lower-case name of a status ("message", "session", ...), never NULL. */
static inline const char *gw_status_name(gw_status status)
{
	switch (status) {
	case GW_OK: return "ok";
	case GW_ERR_MESSAGE: return "message";
	case GW_ERR_FOLDER: return "folder";
	case GW_ERR_SESSION: return "session";
	case GW_ERR_AUTH: return "auth";
	case GW_ERR_CONFIG: return "config";
	case GW_ERR_THROTTLED: return "throttled";
	case GW_ERR_CANCELLED: return "cancelled";
	case GW_ERR_MAILBOX: return "mailbox";
	}
	return "unknown";
}

#ifdef __cplusplus
}
#endif
#endif
