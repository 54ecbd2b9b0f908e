/* A C program using the installed C API: loads a model, compares, ranks, and checks an error path.
 * Usage: c_consumer MODEL_DIR. Prints the compare score and the ranks; exits non-zero on any failure. */
#include <pairrm/pairrm_c.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  if (pairrm_model_load("/nonexistent", NULL) != NULL || strlen(pairrm_last_error()) == 0) return 3;
  pairrm_load_params params = pairrm_load_params_default();
  pairrm_model* model = pairrm_model_load(argv[1], &params);
  if (!model) {
    fprintf(stderr, "load: %s\n", pairrm_last_error());
    return 1;
  }
  pairrm_context* ctx = pairrm_context_new(model, 1);
  const char* src[] = {"hello!"};
  const char* a[] = {"hi!"};
  const char* b[] = {"f**k off!"};
  pairrm_compare_result r;
  if (!ctx || pairrm_compare(ctx, src, a, b, 1, PAIRRM_COMPARE_BOTH, &r) != 0) {
    fprintf(stderr, "compare: %s\n", pairrm_last_error());
    return 1;
  }
  const char* cands[] = {"get out!", "hi! I am fine, thanks!", "bye!"};
  double scores[3];
  int32_t ranks[3];
  if (pairrm_rank(ctx, "hello, how are you!", cands, 3, scores, ranks) != 0) return 1;
  pairrm_model_info info;
  info.struct_size = sizeof info;
  if (pairrm_model_info_get(model, &info) != 0) return 1;
  printf("pairrm %s isa=%s score=%.6f logit_ab=%.6f logit_ba=%.6f ranks=%d,%d,%d\n", pairrm_version(), info.isa,
         r.score, r.logit_ab, r.logit_ba, ranks[0], ranks[1], ranks[2]);
  pairrm_context_free(ctx);
  pairrm_model_free(model);
  return 0;
}
