/* Trivial but real operations shared by the loader's test plugins: the good
 * plugins are called through them, the bad ones need complete tables so that
 * each is refused for exactly one reason. */
#ifndef GW_TEST_PLUGIN_OPS_H
#define GW_TEST_PLUGIN_OPS_H

#include <godwit/plugin.h>

struct test_config {
	const char *host;
	int64_t port;
	int mode;
};

/* A valid option table binding into struct test_config. */
extern const struct gw_option test_options[];

gw_status test_init(const struct gw_host *host, struct gw_ctx *ctx, const void *config,
                    void **state);
void test_fini(void *state);
gw_status test_open(void *state, struct gw_ctx *ctx, const struct gw_mailbox *mailbox,
                    void **session);
void test_close(void *session);
gw_status test_list_folders(void *session, gw_folder_cb cb, void *arg);
gw_status test_select_folder(void *session, const char *folder, struct gw_folder_status *status);
gw_status test_scan(void *session, const struct gw_scan_request *request, gw_meta_cb cb, void *arg);
gw_status test_fetch(void *session, const struct gw_fetch_request *request,
                     const struct gw_fetch_target *target);
gw_status test_ensure_folder(void *session, const struct gw_folder_path *path, void **folder,
                             char folder_id[GW_SINK_ID_MAX]);
gw_status test_append(void *session, void *folder, const struct gw_sink_item *item,
                      char message_id[GW_SINK_ID_MAX]);
gw_status test_flush(void *session);

#define TEST_SOURCE_OPS                                                                            \
	.struct_size = sizeof(struct gw_source_ops), .init = test_init, .fini = test_fini,         \
	.open = test_open, .list_folders = test_list_folders, .select_folder = test_select_folder, \
	.scan = test_scan, .fetch = test_fetch, .close = test_close

#define TEST_SINK_OPS                                                                              \
	.struct_size = sizeof(struct gw_sink_ops), .init = test_init, .fini = test_fini,           \
	.open = test_open, .ensure_folder = test_ensure_folder, .append = test_append,             \
	.flush = test_flush, .close = test_close

#endif
