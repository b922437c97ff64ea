/* The IMAP connection as the imap_*.c modules share it, and the command
 * layer they all use (imap_cmd.c): tags, writing commands with literals,
 * reading responses with the handling every command needs (capabilities,
 * EXISTS/EXPUNGE, BYE), mapping tagged failures to statuses, traces. */
#ifndef GW_IMAP_INTERNAL_H
#define GW_IMAP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <godwit/imap.h>

#include "imap_io.h"
#include "imap_parse.h"

#define GW_IMAP_TAG_MAX 16

/* A folder whose wire name is not the modified UTF-7 form of its UTF-8 name
 * (a server that sends raw UTF-8): select must use the wire name as listed. */
struct imap_alias {
	char *utf8;
	char *wire;
};

struct gw_imap {
	struct gw_ctx *ctx;
	struct imap_io io;
	struct imap_parser parser;
	enum gw_imap_tls tls;
	bool tls_verify;
	char *ca_file;
	uint64_t max_literal;
	unsigned pipeline_depth;

	char **caps; /* upper case, as advertised */
	size_t cap_count;
	unsigned next_tag;
	char last_response[512];

	bool broken; /* transport unusable; every command fails with GW_ERR_SESSION */
	bool logging_out;
	bool authenticated;
	bool selected;
	uint32_t exists;

	struct imap_alias *aliases;
	size_t alias_count;
	char **foreign_prefixes; /* other users' and shared namespaces: not this mailbox's */
	size_t foreign_count;
};

/* Untagged responses of a command, after the common handling. */
typedef gw_status (*imap_untagged_fn)(void *arg, struct gw_imap *imap,
                                      const struct imap_response *resp);

void imap_next_tag(struct gw_imap *imap, char tag[GW_IMAP_TAG_MAX]);

/* Write "<tag> <command>\r\n". @p trace replaces the command in the trace
 * (credentials); NULL traces it as is. */
gw_status imap_send(struct gw_imap *imap, const char *tag, const char *command, const char *trace);
/* Write raw bytes (a batch of commands, a SASL response); traced as @p trace
 * when not NULL, else line by line. */
gw_status imap_send_raw(struct gw_imap *imap, const char *data, size_t len, const char *trace);

/* Read one response and apply the common handling. A BYE (unless logging
 * out) fails with GW_ERR_SESSION. Any failure marks the connection broken. */
gw_status imap_read(struct gw_imap *imap, struct imap_response *resp);

/* Read until the tagged response for @p tag, passing untagged ones to @p fn
 * (may be NULL). A non-GW_OK from @p fn is remembered and returned after
 * the tagged response was read, so the connection stays in step. The
 * tagged response is left in @p tagged (free it with imap_response_free). */
gw_status imap_wait(struct gw_imap *imap, const char *tag, imap_untagged_fn fn, void *arg,
                    struct imap_response *tagged);

/* imap_send + imap_wait with a fresh tag. */
gw_status imap_command(struct gw_imap *imap, const char *command, imap_untagged_fn fn, void *arg,
                       struct imap_response *tagged);

/* Record a tagged NO/BAD (or BYE) as the last response and fail with
 * @p status, or GW_ERR_THROTTLED (setting the retry delay) if the server
 * asked us to back off. The message is "<what>: <server text>". */
gw_status imap_fail_response(struct gw_imap *imap, const struct imap_response *resp,
                             gw_status status, const char *what);

/* Fail if the connection is already broken. */
gw_status imap_check_usable(struct gw_imap *imap);

/* Replace the capability list with the atoms of @p list from index @p first. */
void imap_set_caps(struct gw_imap *imap, const struct imap_value *list, size_t first);
void imap_clear_caps(struct gw_imap *imap);
bool imap_has_cap(const struct gw_imap *imap, const char *name);

/* Append @p s as an IMAP quoted string ("..." with \ and " escaped). */
void imap_append_quoted(struct gw_buf *out, const char *s);

/* Server asked to back off: [THROTTLED] or "Suggested Backoff Time: N milliseconds". */
bool imap_response_throttled(const struct imap_response *resp, uint32_t *retry_after_ms);

/* ---- commands implemented in the other modules ---- */

gw_status imap_login(struct gw_imap *imap, const struct gw_imap_credentials *credentials);
gw_status imap_list(struct gw_imap *imap, gw_folder_cb cb, void *arg);
/* The name to send for a folder given in UTF-8 (an alias or its modified UTF-7). */
char *imap_wire_name(struct gw_imap *imap, const char *utf8, const char **error);
gw_status imap_scan(struct gw_imap *imap, const struct gw_scan_request *request, gw_meta_cb cb,
                    void *arg);
gw_status imap_fetch(struct gw_imap *imap, const struct gw_fetch_request *request,
                     const struct gw_fetch_target *target);

#endif
