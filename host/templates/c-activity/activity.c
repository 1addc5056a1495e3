// The `{{name}}` activity, in C. Every function the world in wit/world.wit
// exports is an activity type: `exports_{{snake}}_NAME` here.
//
// `caisson build` generates {{snake}}.h / {{snake}}.c from the WIT with
// `wit-bindgen c`, compiles every .c here with clang for wasm32-wasi (a
// reactor) and wraps the module into a component with the WASI preview1
// adapter. String arguments are owned by the callee: free them.
#include "{{snake}}.h"

#include <stdio.h>

uint32_t greeting(const uint8_t *name, size_t len, char *out, size_t cap);

void exports_{{snake}}_{{snake}}({{snake}}_string_t *name, {{snake}}_string_t *ret) {
  char line[256];
  snprintf(line, sizeof line, "greeting %.*s", (int)name->len, (const char *)name->ptr);
  {{snake}}_string_t message;
  {{snake}}_string_dup(&message, line);
  caisson_activity_context_log(CAISSON_ACTIVITY_TYPES_LOG_LEVEL_INFO, &message);
  {{snake}}_string_free(&message);

  char text[256];
  greeting(name->ptr, name->len, text, sizeof text);
  {{snake}}_string_dup(ret, text);
  {{snake}}_string_free(name);
}

// Plain code (no bindings), so it can be tested natively too.
uint32_t greeting(const uint8_t *name, size_t len, char *out, size_t cap) {
  return (uint32_t)snprintf(out, cap, "Hello, %.*s!", (int)len, (const char *)name);
}
