// A C activity: CRC-32 and word count of a string.
//
// `caisson build` generates checksum.h / checksum.c from wit/world.wit with
// `wit-bindgen c`, compiles everything with clang for wasm32-wasi as a
// reactor and wraps the module into a component with the WASI preview1
// adapter. Every `exports_checksum_*` function is an activity type; string
// arguments are owned by the callee, so each is freed after use.
#include "checksum.h"

#include <stdio.h>

static void log_info(const char *text) {
  checksum_string_t message;
  checksum_string_dup(&message, text);
  caisson_activity_context_log(CAISSON_ACTIVITY_TYPES_LOG_LEVEL_INFO, &message);
  checksum_string_free(&message);
}

uint32_t exports_checksum_crc32(checksum_string_t *text) {
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < text->len; i++) {
    crc ^= text->ptr[i];
    for (int bit = 0; bit < 8; bit++) {
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
  }
  crc = ~crc;
  char line[64];
  snprintf(line, sizeof line, "crc32 of %zu bytes: %08x", text->len, crc);
  log_info(line);
  checksum_string_free(text);
  return crc;
}

uint32_t exports_checksum_word_count(checksum_string_t *text) {
  uint32_t words = 0;
  int in_word = 0;
  for (size_t i = 0; i < text->len; i++) {
    uint8_t c = text->ptr[i];
    int space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (!space && !in_word) {
      words++;
    }
    in_word = !space;
  }
  checksum_string_free(text);
  return words;
}
