/* The operations behind test_plugin_ops.h. */
#include "test_plugin_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const test_modes[] = {"fast", "slow", NULL};

const struct gw_option test_options[] = {
        {.name = "host",
         .type = GW_OPT_STRING,
         .flags = GW_OPT_REQUIRED,
         .offset = offsetof(struct test_config, host),
         .description = "Server name."},
        {.name = "port",
         .type = GW_OPT_INT,
         .default_value = "993",
         .offset = offsetof(struct test_config, port),
         .description = "TCP port."},
        {.name = "mode",
         .type = GW_OPT_ENUM,
         .default_value = "fast",
         .offset = offsetof(struct test_config, mode),
         .choices = test_modes,
         .description = "How to go."},
        GW_OPTION_END,
};

struct test_state {
	const struct gw_host *host;
	const struct test_config *config;
};

gw_status test_init(const struct gw_host *host, struct gw_ctx *ctx, const void *config,
                    void **state)
{
	struct test_state *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return GW_ERR_CONFIG;
	s->host = host;
	s->config = config;
	host->log(ctx, GW_LOG_INFO, "test plugin init for %s",
	          s->config != NULL && s->config->host != NULL ? s->config->host : "(none)");
	*state = s;
	return GW_OK;
}

void test_fini(void *state)
{
	free(state);
}

gw_status test_open(void *state, struct gw_ctx *ctx, const struct gw_mailbox *mailbox,
                    void **session)
{
	(void)ctx;
	(void)mailbox;
	*session = state;
	return GW_OK;
}

void test_close(void *session)
{
	(void)session;
}

gw_status test_list_folders(void *session, gw_folder_cb cb, void *arg)
{
	(void)session;
	struct gw_folder_info inbox = {.struct_size = sizeof(inbox),
	                               .name = "INBOX",
	                               .delimiter = '/',
	                               .role = GW_ROLE_INBOX,
	                               .selectable = true};
	struct gw_folder_info sent = inbox;
	sent.name = "Sent";
	sent.role = GW_ROLE_SENT;
	gw_status st = cb(arg, &inbox);
	return st != GW_OK ? st : cb(arg, &sent);
}

gw_status test_select_folder(void *session, const char *folder, struct gw_folder_status *status)
{
	(void)session;
	status->uidvalidity = strcmp(folder, "INBOX") == 0 ? 42 : 43;
	status->uidnext = 3;
	status->exists = 2;
	return GW_OK;
}

gw_status test_scan(void *session, const struct gw_scan_request *request, gw_meta_cb cb, void *arg)
{
	(void)session;
	for (uint32_t uid = request->uid_min; uid <= 2; uid++) {
		struct gw_message_meta meta = {.struct_size = sizeof(meta), .uid = uid, .size = 5};
		gw_status st = cb(arg, &meta);
		if (st != GW_OK)
			return st;
	}
	return GW_OK;
}

gw_status test_fetch(void *session, const struct gw_fetch_request *request,
                     const struct gw_fetch_target *target)
{
	(void)session;
	for (size_t i = 0; i < request->count; i++) {
		gw_status st = target->begin(target->arg, request->uids[i], 5);
		if (st == GW_OK)
			st = target->data(target->arg, "hello", 5);
		if (st == GW_OK)
			st = target->end(target->arg, request->uids[i]);
		if (st != GW_OK)
			return st;
	}
	return GW_OK;
}

gw_status test_ensure_folder(void *session, const struct gw_folder_path *path, void **folder,
                             char folder_id[GW_SINK_ID_MAX])
{
	(void)session;
	size_t used = 0;
	folder_id[0] = '\0';
	for (size_t i = 0; i < path->count; i++)
		used += (size_t)snprintf(folder_id + used, GW_SINK_ID_MAX - used, ".%s",
		                         path->components[i]);
	*folder = NULL;
	return GW_OK;
}

gw_status test_append(void *session, void *folder, const struct gw_sink_item *item,
                      char message_id[GW_SINK_ID_MAX])
{
	(void)session;
	(void)folder;
	snprintf(message_id, GW_SINK_ID_MAX, "%zu-%s", item->message->size, item->origin_key);
	return GW_OK;
}

gw_status test_flush(void *session)
{
	(void)session;
	return GW_OK;
}
