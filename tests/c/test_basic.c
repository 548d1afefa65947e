/* What needs no network: status texts, names, defaults, argument and step
 * configuration errors. */
#define _POSIX_C_SOURCE 200809L

#include "c_test.h"

static void ignore_outcome(const passthru_outcome* outcome, void* user_data) {
  (void)outcome;
  (void)user_data;
}

static void strerror_names_every_status(void) {
  const int codes[] = {PASSTHRU_OK,     PASSTHRU_EINVAL, PASSTHRU_ECONFIG,
                       PASSTHRU_ENOMEM, PASSTHRU_EBUSY,  PASSTHRU_EINTERNAL};
  const size_t n = sizeof codes / sizeof codes[0];
  const char* unknown = passthru_strerror(99);
  size_t i, j;
  REQUIRE(unknown != NULL);
  CHECK_CONTAINS(unknown, "unknown");
  CHECK_STR(passthru_strerror(-1), unknown);
  for (i = 0; i < n; ++i) {
    const char* text = passthru_strerror(codes[i]);
    REQUIRE(text != NULL);
    CHECK(strlen(text) > 0);
    CHECK(strcmp(text, unknown) != 0);
    for (j = 0; j < i; ++j) CHECK(strcmp(text, passthru_strerror(codes[j])) != 0);
  }
  CHECK_STR(passthru_strerror(PASSTHRU_OK), "success");
  CHECK_CONTAINS(passthru_strerror(PASSTHRU_ECONFIG), "config");
  CHECK_CONTAINS(passthru_strerror(PASSTHRU_ENOMEM), "memory");
}

static void version_and_route_names(void) {
  const char* version = passthru_version();
  int dots = 0;
  const char* p;
  REQUIRE(version != NULL);
  for (p = version; *p != '\0'; ++p) {
    if (*p == '.') {
      ++dots;
    } else {
      CHECK(*p >= '0' && *p <= '9');
    }
  }
  CHECK_INT(dots, 2);
  CHECK_STR(passthru_route_name(PASSTHRU_ROUTE_NEXT_APPLET), "next_applet");
  CHECK_STR(passthru_route_name(PASSTHRU_ROUTE_EXTERNAL_FLOW), "external_flow");
  CHECK_STR(passthru_route_name(PASSTHRU_ROUTE_DEFAULT), "default");
  CHECK_STR(passthru_route_name(PASSTHRU_ROUTE_ON_ERROR), "on_error");
  CHECK_STR(passthru_route_name(PASSTHRU_ROUTE_ON_TIMEOUT), "on_timeout");
  CHECK_STR(passthru_route_name(PASSTHRU_ROUTE_CANCELLED), "cancelled");
  CHECK_STR(passthru_route_name((passthru_route)42), "unknown");
}

static void init_sets_the_documented_defaults(void) {
  passthru_step_config config;
  passthru_client_options options;
  memset(&config, 0x5a, sizeof config);
  passthru_step_config_init(&config);
  CHECK(config.url == NULL);
  CHECK_INT(config.method, PASSTHRU_GET);
  CHECK_INT(config.timeout_ms, 15000);
  CHECK(config.default_next == NULL && config.on_error == NULL && config.on_timeout == NULL);
  CHECK(config.known_applets == NULL && config.known_applet_count == 0);
  CHECK(config.external_flow_hosts == NULL && config.external_flow_host_count == 0);
  CHECK(config.headers == NULL && config.header_count == 0);
  CHECK_INT(config.quote_digits, 0);
  CHECK_INT(config.max_answer_bytes, 65536);
  CHECK(config.name == NULL);
  CHECK_INT(config.tls_min_version_1_3, 0);
  CHECK(config.tls_ca_file == NULL && config.tls_ca_dir == NULL && config.tls_client_cert_file == NULL);
  CHECK(config.tls_client_key_file == NULL && config.tls_client_key_password == NULL);
  CHECK(config.tls_pinned_public_key == NULL);
  CHECK_INT(config.tls_verify_peer, 1);
  CHECK_INT(config.tls_verify_host, 1);
  CHECK_INT(config.allow_plain_http, 0);
  CHECK_INT(config.max_redirects, 0);
  CHECK(config.signing_keys == NULL && config.signing_key_count == 0);
  CHECK(config.secret_names == NULL && config.secret_name_count == 0);
  CHECK_INT(config.http_version, PASSTHRU_HTTP_AUTOMATIC);
  CHECK(config.fallback_url == NULL);
  CHECK_INT(config.primary_timeout_ms, 0);
  CHECK_INT(config.retries, 0);
  CHECK_INT(config.retry_after_send, 0);
  CHECK_INT(config.connect_timeout_ms, 0);
  CHECK_INT(config.read_timeout_ms, 0);
  CHECK_INT(config.hedge_after_ms, 0);

  memset(&options, 0x5a, sizeof options);
  passthru_client_options_init(&options);
  CHECK(options.log == NULL && options.log_user_data == NULL);
  CHECK_INT(options.log_level, PASSTHRU_LOG_WARN);
  CHECK(options.user_agent == NULL);
  CHECK_INT(options.max_in_flight, 4096);
  CHECK_INT(options.connection_max_idle_s, 4);
  CHECK_INT(options.has_utc_offset, 0);
  CHECK_INT(options.block_private_destinations, 0);
  CHECK(options.allowed_destinations == NULL && options.allowed_destination_count == 0);
  CHECK(options.executor == NULL && options.executor_user_data == NULL);

  /* NULL is ignored. */
  passthru_step_config_init(NULL);
  passthru_client_options_init(NULL);
}

static void null_arguments_are_refused(void) {
  passthru_step_config config;
  passthru_step* step = (passthru_step*)&config; /* must be reset to NULL */
  passthru_client* client = NULL;
  passthru_client_options options = c_test_quiet_options();
  passthru_loop_hooks hooks;
  passthru_call call = c_test_sample_call();
  uint64_t id = 77;
  char why[128];

  passthru_step_config_init(&config);
  config.url = "http://127.0.0.1:1/";
  config.default_next = "main-menu";
  strcpy(why, "untouched");
  CHECK_INT(passthru_step_create(NULL, &step, why, sizeof why), PASSTHRU_EINVAL);
  CHECK(step == NULL);
  CHECK_INT(passthru_step_create(&config, NULL, why, sizeof why), PASSTHRU_EINVAL);
  CHECK_INT(passthru_step_create(NULL, NULL, NULL, 0), PASSTHRU_EINVAL);

  CHECK_INT(passthru_client_create(NULL, NULL), PASSTHRU_EINVAL);
  CHECK_INT(passthru_client_create(&options, NULL), PASSTHRU_EINVAL);

  memset(&hooks, 0, sizeof hooks);
  client = (passthru_client*)&hooks;
  CHECK_INT(passthru_client_create_on_loop(NULL, &options, &client), PASSTHRU_EINVAL);
  CHECK(client == NULL);
  CHECK_INT(passthru_client_create_on_loop(&hooks, &options, &client),
            PASSTHRU_EINVAL); /* NULL hooks inside */
  CHECK(client == NULL);
  CHECK_INT(passthru_client_create_on_loop(&hooks, &options, NULL), PASSTHRU_EINVAL);

  REQUIRE(passthru_step_create(&config, &step, why, sizeof why) == PASSTHRU_OK);
  REQUIRE(passthru_client_create(&options, &client) == PASSTHRU_OK);
  CHECK_INT(passthru_execute(NULL, step, &call, ignore_outcome, NULL, &id), PASSTHRU_EINVAL);
  CHECK_INT(id, 0);
  CHECK_INT(passthru_execute(client, NULL, &call, ignore_outcome, NULL, &id), PASSTHRU_EINVAL);
  CHECK_INT(passthru_execute(client, step, NULL, ignore_outcome, NULL, &id), PASSTHRU_EINVAL);
  CHECK_INT(passthru_execute(client, step, &call, NULL, NULL, &id), PASSTHRU_EINVAL);
  CHECK_INT(passthru_execute(client, step, &call, NULL, NULL, NULL), PASSTHRU_EINVAL);

  /* A call with a count but no array, or a direction out of range. */
  call.custom_count = 2;
  CHECK_INT(passthru_execute(client, step, &call, ignore_outcome, NULL, NULL), PASSTHRU_EINVAL);
  call = c_test_sample_call();
  call.direction = (passthru_direction)7;
  CHECK_INT(passthru_execute(client, step, &call, ignore_outcome, NULL, NULL), PASSTHRU_EINVAL);

  /* What takes no status ignores NULL. */
  passthru_cancel(NULL, 1);
  passthru_cancel(client, 0);
  passthru_cancel(client, 123456);
  passthru_loop_socket_ready(NULL, 3, PASSTHRU_READY_READ);
  passthru_loop_timer_expired(NULL);
  passthru_loop_woken(NULL);
  /* The loop entry points do nothing for a client with its own thread. */
  passthru_loop_timer_expired(client);
  passthru_loop_woken(client);
  passthru_client_destroy(NULL);
  passthru_step_destroy(NULL);

  passthru_client_destroy(client);
  passthru_step_destroy(step);
}

static void out_of_range_client_options_are_refused(void) {
  const char* const bad_cidr[] = {"10.0.0.0/8", "not-a-network"};
  const char* const good_cidr[] = {"10.0.0.0/8", "fd00::/8"};
  passthru_client_options options;
  passthru_client* client = NULL;

  options = c_test_quiet_options();
  options.log_level = (passthru_log_level)9;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);
  CHECK(client == NULL);

  options = c_test_quiet_options();
  options.has_utc_offset = 1;
  options.utc_offset_minutes = 1000000;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);

  options = c_test_quiet_options();
  options.connection_max_idle_s = -1;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);

  options = c_test_quiet_options();
  options.user_agent = "engine/1.0\r\nX-Injected: 1";
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);

  options = c_test_quiet_options();
  options.allowed_destination_count = 1;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);

  options = c_test_quiet_options();
  options.block_private_destinations = 1;
  options.allowed_destinations = bad_cidr;
  options.allowed_destination_count = 2;
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_EINVAL);
  CHECK(client == NULL);

  options.allowed_destinations = good_cidr;
  options.has_utc_offset = 1;
  options.utc_offset_minutes = -(5 * 60 + 30);
  CHECK_INT(passthru_client_create(&options, &client), PASSTHRU_OK);
  CHECK(client != NULL);
  passthru_client_destroy(client);

  /* NULL options: the defaults. */
  client = NULL;
  CHECK_INT(passthru_client_create(NULL, &client), PASSTHRU_OK);
  CHECK(client != NULL);
  passthru_client_destroy(client);
}

/* Expects passthru_step_create to refuse `config` with a message that
 * begins with `field` + ": ". */
static void expect_config_error(const passthru_step_config* config, const char* field, int line) {
  passthru_step* step = NULL;
  char why[512];
  char prefix[128];
  int status;
  memset(why, 'x', sizeof why);
  status = passthru_step_create(config, &step, why, sizeof why);
  if (status != PASSTHRU_ECONFIG) {
    fprintf(stderr, "line %d: expected PASSTHRU_ECONFIG, got %d (%s)\n", line, status,
            passthru_strerror(status));
    ++c_test_failures;
  }
  CHECK(step == NULL);
  CHECK(memchr(why, '\0', sizeof why) != NULL);
  snprintf(prefix, sizeof prefix, "%s: ", field);
  if (strncmp(why, prefix, strlen(prefix)) != 0) {
    fprintf(stderr, "line %d: message \"%.*s\" does not begin with \"%s\"\n", line, (int)sizeof why, why,
            prefix);
    ++c_test_failures;
  }
  CHECK(strlen(why) > strlen(prefix));
  passthru_step_destroy(step);
}

static passthru_step_config valid_config(void) {
  passthru_step_config config;
  passthru_step_config_init(&config);
  config.url = "https://crm.example.com/route";
  config.default_next = "main-menu";
  return config;
}

static void config_errors_name_the_field(void) {
  static const passthru_param crlf_header[] = {{"X-Tenant", "acme"}, {"X-Evil", "a\r\nInjected: 1"}};
  static const passthru_param bad_name[] = {{"Bad Name", "x"}};
  static const char* const empty_applet[] = {"vip-connect", ""};
  static const char* const null_applet[] = {NULL};
  static const char* const short_key[] = {"too short"};
  passthru_step_config config;
  passthru_step* step = NULL;
  char why[256];

  /* The valid one passes, and leaves the error buffer empty. */
  config = valid_config();
  strcpy(why, "stale");
  CHECK_INT(passthru_step_create(&config, &step, why, sizeof why), PASSTHRU_OK);
  CHECK(step != NULL);
  CHECK_STR(why, "");
  passthru_step_destroy(step);

  config = valid_config();
  config.url = "not a url";
  expect_config_error(&config, "url", __LINE__);
  config.url = "ftp://crm.example.com/";
  expect_config_error(&config, "url", __LINE__);
  config.url = NULL;
  expect_config_error(&config, "url", __LINE__);
  config.url = "http://crm.example.com/"; /* plain http off loopback */
  expect_config_error(&config, "url", __LINE__);

  config = valid_config();
  config.fallback_url = "ftp://backup.example.com/";
  expect_config_error(&config, "fallback_url", __LINE__);
  config = valid_config();
  config.retries = 6;
  expect_config_error(&config, "retries", __LINE__);
  config = valid_config();
  config.method = PASSTHRU_POST;
  config.retry_after_send = 1;
  expect_config_error(&config, "retry_after_send", __LINE__);
  config = valid_config();
  config.connect_timeout_ms = -1;
  expect_config_error(&config, "connect_timeout_ms", __LINE__);
  config = valid_config();
  config.read_timeout_ms = 3600001;
  expect_config_error(&config, "read_timeout_ms", __LINE__);
  config = valid_config();
  config.hedge_after_ms = 500; /* no fallback_url to hedge with */
  expect_config_error(&config, "hedge_after_ms", __LINE__);
  config.fallback_url = "https://backup.example.com/";
  config.primary_timeout_ms = 20000; /* 15 s timeout */
  config.hedge_after_ms = 0;
  expect_config_error(&config, "primary_timeout_ms", __LINE__);
  config = valid_config();
  config.url = "https://crm.example.com/passthru#rc=9";
  expect_config_error(&config, "url", __LINE__);

  config = valid_config();
  config.http_version = (passthru_http_version)7;
  expect_config_error(&config, "http_version", __LINE__);
  config.http_version = PASSTHRU_HTTP_2;
  config.url = "http://127.0.0.1:8080/"; /* HTTP/2 over TLS only */
  expect_config_error(&config, "http_version", __LINE__);

  config = valid_config();
  config.default_next = NULL;
  expect_config_error(&config, "default_next", __LINE__);
  config.default_next = "";
  expect_config_error(&config, "default_next", __LINE__);

  config = valid_config();
  config.timeout_ms = 0;
  expect_config_error(&config, "timeout_ms", __LINE__);
  config.timeout_ms = -5;
  expect_config_error(&config, "timeout_ms", __LINE__);
  config.timeout_ms = 3600001;
  expect_config_error(&config, "timeout_ms", __LINE__);

  config = valid_config();
  config.headers = crlf_header;
  config.header_count = 2;
  expect_config_error(&config, "headers[1].value", __LINE__);
  config.headers = bad_name;
  config.header_count = 1;
  expect_config_error(&config, "headers[0].name", __LINE__);
  config.headers = NULL;
  expect_config_error(&config, "headers", __LINE__);

  config = valid_config();
  config.known_applets = empty_applet;
  config.known_applet_count = 2;
  expect_config_error(&config, "known_applets[1]", __LINE__);
  config.known_applets = null_applet;
  config.known_applet_count = 1;
  expect_config_error(&config, "known_applets[0]", __LINE__);
  config.known_applets = NULL;
  expect_config_error(&config, "known_applets", __LINE__);

  config = valid_config();
  config.method = (passthru_method)3;
  expect_config_error(&config, "method", __LINE__);

  config = valid_config();
  config.max_answer_bytes = 0;
  expect_config_error(&config, "max_answer_bytes", __LINE__);

  config = valid_config();
  config.max_redirects = 9;
  expect_config_error(&config, "max_redirects", __LINE__);

  config = valid_config();
  config.signing_keys = short_key;
  config.signing_key_count = 1;
  expect_config_error(&config, "signing_keys[0]", __LINE__);

  config = valid_config();
  config.tls_ca_file = "/nonexistent/ca.pem";
  expect_config_error(&config, "tls_ca_file", __LINE__);
}

static void config_error_text_is_truncated_and_terminated(void) {
  passthru_step_config config = valid_config();
  passthru_step* step = NULL;
  char full[512];
  char small[8];
  char none[4] = {'a', 'b', 'c', '\0'};

  config.url = "not a url";
  CHECK_INT(passthru_step_create(&config, &step, full, sizeof full), PASSTHRU_ECONFIG);
  CHECK(strlen(full) > sizeof small);

  memset(small, 'x', sizeof small);
  CHECK_INT(passthru_step_create(&config, &step, small, sizeof small), PASSTHRU_ECONFIG);
  CHECK_INT(strlen(small), sizeof small - 1);
  CHECK(strncmp(small, full, sizeof small - 1) == 0);

  /* A size of 0 writes nothing; a NULL buffer is fine. */
  CHECK_INT(passthru_step_create(&config, &step, none, 0), PASSTHRU_ECONFIG);
  CHECK_STR(none, "abc");
  CHECK_INT(passthru_step_create(&config, &step, NULL, 64), PASSTHRU_ECONFIG);
  memset(small, 'x', sizeof small);
  CHECK_INT(passthru_step_create(&config, &step, small, 1), PASSTHRU_ECONFIG);
  CHECK_INT(small[0], '\0');
  CHECK_INT(small[1], 'x');
  CHECK(step == NULL);
}

const c_test_case c_api_basic_tests[] = {
    {"strerror_names_every_status", strerror_names_every_status},
    {"version_and_route_names", version_and_route_names},
    {"init_sets_the_documented_defaults", init_sets_the_documented_defaults},
    {"null_arguments_are_refused", null_arguments_are_refused},
    {"out_of_range_client_options_are_refused", out_of_range_client_options_are_refused},
    {"config_errors_name_the_field", config_errors_name_the_field},
    {"config_error_text_is_truncated_and_terminated", config_error_text_is_truncated_and_terminated},
    {NULL, NULL}};
