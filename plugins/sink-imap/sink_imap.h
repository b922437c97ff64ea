/* The IMAP sink, split in four: sink_imap.c (options, sessions),
 * sink_imap_folders.c (name mapping, roles, CREATE, APPENDLIMIT),
 * sink_imap_append.c (pipelined APPEND, flush) and sink_imap_lookup.c
 * (finding a message appended before a crash). The connection options and
 * the login are shared with the imap source (plugins/common/imap_endpoint.h).
 * All protocol work is the core's IMAP client, reached through host->imap. */
#ifndef SINK_IMAP_H
#define SINK_IMAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <godwit/godwit.h>

#include "imap_endpoint.h"

struct imap_sink_config {
	struct gw_imap_endpoint endpoint;
	bool create_folders;
	bool subscribe;
	bool merge_case_variants;
};

/* Origin keys of messages whose pipelined APPEND was refused after append()
 * had returned: the next attempt sends them alone, so the refusal reaches
 * the core as a message-level status. Shared by the pipeline's sessions. */
struct late_refusals {
	pthread_mutex_t lock;
	char (*keys)[40];
	size_t count;
};

struct imap_sink {
	const struct gw_host *host;
	const struct imap_sink_config *cfg;
	struct gw_imap_params params;
	struct late_refusals late;
};

/* A destination folder as listed when the session opened (or created since). */
struct dest_folder {
	char *name; /* UTF-8 full name */
	enum gw_folder_role role;
	bool selectable;
};

/* The handle ensure_folder returns. */
struct sink_folder {
	char *name; /* UTF-8 full name on the destination */
	uint32_t uidvalidity;
	uint64_t append_limit; /* APPENDLIMIT (server-wide or this folder's); 0: none */
	uint32_t *claimed;     /* UIDs lookup() already matched to a message */
	size_t claimed_count;
	bool settled; /* no earlier session was seen still storing into it */
};

/* What prepare_folders found for a destination folder, for ensure_folder. */
struct prepared_folder {
	char *name; /* UTF-8 full name on the destination */
	gw_status status;
	char *error; /* with a status other than GW_OK */
	uint32_t uidvalidity;
	uint64_t append_limit;
};

/* One APPEND whose result is still due (or arrived and awaits flush). */
struct append_record {
	struct imap_session *session;
	char *id_out; /* the core's message_id buffer: filled when APPENDUID arrives */
	/* The core's per-item report (NULL from an older core): a refusal of this
	 * message alone that arrives after append() returned is written here. */
	struct gw_sink_outcome *outcome;
	char origin_key[40];
	bool done;
	gw_status status;
	char *text;
	uint32_t retry_after_ms;
};

struct imap_session {
	struct imap_sink *sink;
	const struct gw_host *host;
	const struct gw_imap_api *api;
	struct gw_ctx *ctx;
	struct gw_imap *imap;
	const char *email;

	char *prefix; /* personal namespace, UTF-8 */
	char delimiter;
	struct dest_folder *dest;
	size_t dest_count;
	struct sink_folder **folders;
	size_t folder_count;
	struct prepared_folder *prepared;
	size_t prepared_count;
	const struct sink_folder *selected; /* for lookup */

	struct append_record **records; /* appended since the last flush */
	size_t record_count;
};

/* sink_imap_folders.c */
gw_status imap_sink_read_folders(struct imap_session *s);
gw_status imap_sink_ensure_folder(void *session, const struct gw_folder_path *path, void **folder,
                                  char folder_id[GW_SINK_ID_MAX]);
gw_status imap_sink_prepare_folders(void *session, const struct gw_folder_path *const *paths,
                                    size_t count);
uint64_t imap_sink_size_limit(void *session, void *folder, char set_by[GW_SINK_LIMIT_TEXT_MAX]);
void imap_sink_folders_free(struct imap_session *s);
/* The destination name of @p path under the mapping rules (README.md); caller frees. */
char *imap_sink_map_path(const char *prefix, char delimiter, const struct gw_folder_path *path);

/* sink_imap_append.c */
gw_status imap_sink_append(void *session, void *folder, const struct gw_sink_item *item,
                           char message_id[GW_SINK_ID_MAX]);
gw_status imap_sink_flush(void *session);
void imap_sink_records_free(struct imap_session *s);
bool imap_sink_late_contains(struct late_refusals *late, const char *key);
void imap_sink_late_add(struct late_refusals *late, const char *key);
void imap_sink_late_remove(struct late_refusals *late, const char *key);

/* sink_imap_lookup.c */
gw_status imap_sink_lookup(void *session, void *folder, const struct gw_sink_item *item,
                           bool *found, char message_id[GW_SINK_ID_MAX]);

#endif
