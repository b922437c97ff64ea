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
	char *wire; /* NULL: listed, but cannot be named in a command (see imap_list.c) */
};

/* What append() needs to know about a folder (from mailbox_info). */
struct imap_append_target {
	char *utf8;
	char **permanent; /* PERMANENTFLAGS as sent */
	size_t permanent_count;
	bool flags_known; /* PERMANENTFLAGS was sent; otherwise every flag is allowed */
	bool any_keyword;
	uint64_t append_limit; /* 0: none */
	uint32_t uidvalidity;
};

/* An APPEND whose tagged response is still due. */
struct imap_pending_append {
	char tag[GW_IMAP_TAG_MAX]; /* the messages of one MULTIAPPEND share their tag */
	gw_imap_append_cb cb;
	void *arg;
	void *user;
	char *dropped; /* flags left out, space-separated */
	/* A MULTIAPPEND message keeps " APPEND <folder> <flags> <date> {n+}\r\n<bytes>\r\n"
	 * until its command's answer: a refusal of the whole command is retried
	 * one message at a time. */
	char *resend;
	size_t resend_len;
	bool queued; /* refused with its command: waits to be sent alone */
};

/* The MULTIAPPEND (RFC 3502) being written: its messages are on the wire, the
 * CRLF that ends the command (and makes the server store them) is not. */
struct imap_append_group {
	bool open;
	char tag[GW_IMAP_TAG_MAX];
	char *folder; /* UTF-8 */
	size_t count;
	uint64_t bytes;
	/* Waits for "+" before the 2nd and later messages: too slow a round trip
	 * and MULTIAPPEND is switched off for the connection. */
	uint64_t shortest_wait_us;
	unsigned waits;
	bool off;
	/* Whether the server keeps reading a MULTIAPPEND it has refused up to
	 * its last line (learnt from ID once): then every message of a command
	 * goes out with a non-synchronising literal, without waiting. */
	bool server_known;
	bool ahead;
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
	unsigned fetch_uids; /* UIDs per body-fetch command */

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
	bool personal_known;   /* NAMESPACE (or LIST "" "") was read */
	char *personal_prefix; /* UTF-8 */
	char personal_delimiter;

	struct imap_append_target *targets;
	size_t target_count;
	struct imap_pending_append *appends; /* in flight, oldest first */
	size_t append_count;
	size_t append_commands; /* APPEND commands sent whole, without their answer */
	size_t copies_kept;     /* bytes of the appends' MULTIAPPEND copies (resend) */
	struct imap_append_group group;
	char **permanent_scratch; /* PERMANENTFLAGS collected by the current SELECT */
	size_t permanent_scratch_count;
	bool permanent_seen;
};

/* Untagged responses of a command, after the common handling. */
typedef gw_status (*imap_untagged_fn)(void *arg, struct gw_imap *imap,
                                      const struct imap_response *resp);

void imap_next_tag(struct gw_imap *imap, char tag[GW_IMAP_TAG_MAX]);

/* Write "<tag> <command>\r\n". @p trace replaces the command in the trace
 * (credentials); NULL traces it as is. */
gw_status imap_send(struct gw_imap *imap, const char *tag, const char *command, const char *trace);
/* Write raw bytes (a batch of commands, a SASL response); traced as @p trace
 * when not NULL ("" traces nothing), else line by line. */
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

/* Take the command a tagged reply answers out of a pipeline's queue (@p count
 * elements of @p size bytes, oldest first, each starting with its tag) into
 * @p out. False if it answers none of them: then it may be an APPEND's. */
bool imap_take_answered(struct gw_imap *imap, void *queue, size_t *count, size_t size,
                        const struct imap_response *resp, void *out);
/* Send (and free) the commands a pipeline queued in @p out, after ending an
 * open MULTIAPPEND: no other command may go out inside one. */
struct gw_buf;
gw_status imap_send_queued(struct gw_imap *imap, struct gw_buf *out);

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

/* SELECT/EXAMINE @p folder (UTF-8); PERMANENTFLAGS end up in permanent_scratch. */
gw_status imap_select(struct gw_imap *imap, const char *folder, bool read_only,
                      struct gw_folder_status *status);
/* The parts of imap_select, for a selection sent in a pipeline: the command
 * (false: the name cannot be sent, *why says why) and its untagged responses
 * (@p arg: a gw_folder_status; EXISTS goes to imap->exists, as for any command). */
bool imap_select_command(struct gw_imap *imap, const char *folder, bool read_only,
                         struct gw_buf *cmd, const char **why);
gw_status imap_select_untagged(void *arg, struct gw_imap *imap, const struct imap_response *resp);
/* NAMESPACE (if advertised): remembers foreign prefixes and the personal one. */
gw_status imap_read_namespaces(struct gw_imap *imap);

/* A tagged response to an APPEND in flight: deliver its result and return
 * true; false if @p resp answers no APPEND. */
bool imap_append_complete(struct gw_imap *imap, const struct imap_response *resp);
/* End the MULTIAPPEND being written, if any: every other command calls this
 * before it is sent. */
gw_status imap_append_close_group(struct gw_imap *imap);
/* Forget APPENDs in flight (the connection failed) and cached folder facts. */
void imap_append_reset(struct gw_imap *imap);
void imap_append_targets_free(struct gw_imap *imap);
gw_status imap_append(struct gw_imap *imap, const struct gw_imap_append *message,
                      gw_imap_append_cb cb, void *arg);
gw_status imap_append_wait(struct gw_imap *imap);
gw_status imap_mailbox_info(struct gw_imap *imap, const char *folder,
                            struct gw_imap_mailbox_info *info);
gw_status imap_get_namespace(struct gw_imap *imap, struct gw_imap_namespace *ns);
gw_status imap_create(struct gw_imap *imap, const char *folder, bool *created);
gw_status imap_prepare_folders(struct gw_imap *imap, struct gw_imap_folder_prep *requests,
                               size_t count);
/* Forget the PERMANENTFLAGS collected for a SELECT (imap_select_untagged). */
void imap_clear_permanent_flags(struct gw_imap *imap);
gw_status imap_subscribe(struct gw_imap *imap, const char *folder);
gw_status imap_search(struct gw_imap *imap, const char *criteria, gw_imap_uid_cb cb, void *arg);
gw_status imap_fetch_meta(struct gw_imap *imap, const uint32_t *uids, size_t count, gw_meta_cb cb,
                          void *arg);

gw_status imap_login(struct gw_imap *imap, const struct gw_imap_credentials *credentials);
gw_status imap_list(struct gw_imap *imap, gw_folder_cb cb, void *arg);
/* The name to send for a folder given in UTF-8 (an alias or its modified UTF-7). */
char *imap_wire_name(struct gw_imap *imap, const char *utf8, const char **error);
gw_status imap_scan(struct gw_imap *imap, const struct gw_scan_request *request, gw_meta_cb cb,
                    void *arg);
gw_status imap_fetch(struct gw_imap *imap, const struct gw_fetch_request *request,
                     const struct gw_fetch_target *target);
gw_status imap_fetch_folders(struct gw_imap *imap, const struct gw_fetch_request *requests,
                             size_t count, const struct gw_fetch_target *target);
gw_status imap_scan_folders(struct gw_imap *imap, const struct gw_scan_request *requests,
                            size_t count, const struct gw_scan_target *target);

#endif
