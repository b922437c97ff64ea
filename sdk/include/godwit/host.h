/**
 * @file godwit/host.h
 * @brief What the core offers to plugins: logging, scoped errors,
 *        cancellation, secrets and shared protocol clients.
 *
 * Plugins never link against core internals: everything they may call is
 * in the gw_host table handed to their init operation. Test for entries
 * added in later ABI minors with GW_HOST_HAS().
 */
#ifndef GODWIT_HOST_H
#define GODWIT_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <godwit/status.h>
#include <godwit/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define GW_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define GW_PRINTF(fmt_idx, arg_idx)
#endif

/** Log levels, most severe first. */
enum gw_log_level {
	GW_LOG_ERROR = 0,
	GW_LOG_WARN,
	GW_LOG_INFO,
	GW_LOG_DEBUG,
	GW_LOG_TRACE, /**< Protocol traces; credentials must already be redacted. */
};

/**
 * Opaque context the core hands to every plugin call that may log or fail.
 * It carries pipeline, mailbox and folder so messages need not repeat them.
 */
struct gw_ctx;

struct gw_imap_api; /* godwit/imap.h */

/** The host table. The core owns it; it outlives every plugin instance. */
struct gw_host {
	size_t struct_size;
	unsigned abi_major;
	unsigned abi_minor;

	/** Log a line with the context's pipeline/mailbox/folder prefixed. */
	void (*log)(struct gw_ctx *ctx, enum gw_log_level level, const char *fmt, ...)
	        GW_PRINTF(3, 4);

	/**
	 * Record why an operation failed and return @p status, so plugins can write
	 * `return host->fail(ctx, GW_ERR_AUTH, "login refused: %s", text);`.
	 * The text is kept for the report; never put a secret in it.
	 */
	gw_status (*fail)(struct gw_ctx *ctx, gw_status status, const char *fmt, ...)
	        GW_PRINTF(3, 4);

	/** With GW_ERR_THROTTLED: the server's requested pause in milliseconds. */
	void (*set_retry_after)(struct gw_ctx *ctx, uint32_t milliseconds);

	/** True once the run is stopping; long operations poll it and return GW_ERR_CANCELLED. */
	bool (*cancelled)(struct gw_ctx *ctx);

	/**
	 * Resolve a secret reference (`${ENV_NAME}`, `${file:/path}` or a literal)
	 * into @p out (allocated, release with gw_host::free). Errors name the reference,
	 * never its value.
	 */
	gw_status (*resolve_secret)(struct gw_ctx *ctx, const char *reference, char **out);

	/** Release memory the host allocated for the plugin. */
	void (*free)(void *ptr);

	/** Value of an extra CSV column of @p mailbox (header compared case-insensitively), or
	 * NULL. */
	const char *(*mailbox_field)(const struct gw_mailbox *mailbox, const char *column);

	/** The shared IMAP client (godwit/imap.h). */
	const struct gw_imap_api *imap;
};

/** True if @p host is new enough to have @p member. */
#define GW_HOST_HAS(host, member)                                                                  \
	((host)->struct_size >= offsetof(struct gw_host, member) + sizeof((host)->member) &&       \
	 (host)->member != NULL)

#ifdef __cplusplus
}
#endif
#endif
