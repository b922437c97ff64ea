/* Logging and the per-call context plugins see as struct gw_ctx.
 * One place writes log lines, so one place redacts secrets: every secret the
 * core resolves is registered here and replaced by *** in any line that would
 * contain it, whoever wrote the line. */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <godwit/host.h>

/* The context behind the opaque struct gw_ctx: who is working on what. */
struct gw_ctx {
	const char *pipeline; /* may be NULL */
	const char *mailbox;  /* email, may be NULL */
	const char *folder;   /* UTF-8, may be NULL */
	const char *plugin;   /* "source imap", may be NULL */
	gw_status status;     /* last status passed to fail() */
	char error[1024];     /* last text passed to fail() */
	uint32_t retry_after_ms;
};

/* Global settings: where lines go (default stderr) and the most verbose level written. */
void gw_log_set_level(enum gw_log_level level);
enum gw_log_level gw_log_get_level(void);
void gw_log_set_stream(FILE *stream);
bool gw_log_parse_level(const char *name, enum gw_log_level *level);

/* Any line logged from now on has every occurrence of @p secret replaced by ***.
 * Secrets shorter than 4 bytes are not registered (they would redact noise). */
void gw_log_register_secret(const char *secret);
/* Copy of @p text with registered secrets masked; caller frees. */
char *gw_log_redact(const char *text);
/* Forget all registered secrets (tests). */
void gw_log_clear_secrets(void);

void gw_log(struct gw_ctx *ctx, enum gw_log_level level, const char *fmt, ...) GW_PRINTF(3, 4);
void gw_vlog(struct gw_ctx *ctx, enum gw_log_level level, const char *fmt, va_list ap)
        GW_PRINTF(3, 0);
/* Record the error in ctx (status + text), log it at debug, return status. */
gw_status gw_fail(struct gw_ctx *ctx, gw_status status, const char *fmt, ...) GW_PRINTF(3, 4);

/* Stop requests (signals). Level 1: finish gracefully; 2: stop now. */
void gw_cancel_request(int level);
int gw_cancel_level(void);

/* The host table handed to plugins. */
const struct gw_host *gw_host_table(void);

#endif
