/* pairrm.cpp C API: PairRM, the pairwise reward model of LLM-Blender, from C and any language with a C FFI.
 *
 * Opaque handles over the C++ API (pairrm.h): a model is loaded once and is read-only, so one model can
 * serve any number of threads; each thread that scores uses its own context (scratch memory).
 *
 *   pairrm_load_params p = pairrm_load_params_default();
 *   pairrm_model* m = pairrm_model_load("/path/to/PairRM-hf", &p);
 *   if (!m) { fprintf(stderr, "%s\n", pairrm_last_error()); return 1; }
 *   pairrm_context* ctx = pairrm_context_new(m, 0);
 *   const char* src[] = {"hello!"}, *a[] = {"hi!"}, *b[] = {"go away"};
 *   pairrm_compare_result r;
 *   if (pairrm_compare(ctx, src, a, b, 1, PAIRRM_COMPARE_BOTH, &r) != 0) ...;
 *   pairrm_context_free(ctx);
 *   pairrm_model_free(m);
 *
 * Errors: functions returning a pointer return NULL, those returning int return non-zero; either way
 * pairrm_last_error() gives the message (per thread, valid until that thread's next pairrm call).
 * No function aborts or throws across the C boundary. Strings are UTF-8 and NUL-terminated.
 */
#ifndef PAIRRM_C_H
#define PAIRRM_C_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PAIRRM_C_API_VERSION 1

typedef struct pairrm_model pairrm_model;
typedef struct pairrm_context pairrm_context;

typedef enum { PAIRRM_PRECISION_FP32 = 0, PAIRRM_PRECISION_BF16 = 1, PAIRRM_PRECISION_INT8 = 2 } pairrm_precision;
typedef enum { PAIRRM_ATTENTION_AUTO = 0, PAIRRM_ATTENTION_FP32 = 1, PAIRRM_ATTENTION_BF16 = 2 } pairrm_attention;
typedef enum {
  PAIRRM_COMPARE_AB = 0,   /* logit(A, B): llm-blender's "[A,B]" */
  PAIRRM_COMPARE_BA = 1,   /* logit(B, A), not negated: "[B,A]" */
  PAIRRM_COMPARE_BOTH = 2  /* logit(A, B) - logit(B, A): "[A,B]+[B,A]" (llm-blender's default) */
} pairrm_compare_mode;

/* Both parameter structs start with their size, so a program built against this header keeps working with a
 * later library that added fields: the library reads / writes only the first struct_size bytes. */
typedef struct pairrm_load_params {
  size_t struct_size;           /* sizeof(pairrm_load_params); pairrm_load_params_default() sets it */
  pairrm_precision precision;   /* default FP32 (the reference's numbers) */
  pairrm_attention attention;   /* default AUTO */
  int special_tokens_as_ids;    /* 0 (default): "<|source|>" etc. in user text are plain text; 1: Hugging Face */
  int byte_fallback;            /* 0 (default): the fast tokenizer's [UNK]s; 1: SentencePiece byte pieces */
  int source_max_length;        /* tokens kept of a source; 0 = the model's (1224 for PairRM) */
  int candidate_max_length;     /* tokens kept of a candidate; 0 = the model's (412 for PairRM) */
} pairrm_load_params;

/* The defaults above. Always start from these: fields added later get their default here. */
pairrm_load_params pairrm_load_params_default(void);

typedef struct pairrm_model_info {
  size_t struct_size;     /* set by the caller to sizeof(pairrm_model_info) before pairrm_model_info_get */
  int hidden_size, num_layers, num_heads, intermediate_size, vocab_size;
  int source_max_length, candidate_max_length;
  int64_t parameter_count;
  pairrm_precision precision;
  const char* isa;        /* the ISA level pairrm's kernels run: "generic" | "avx2" | "avx512" | "avx512_bf16" */
  const char* directory;  /* owned by the model */
} pairrm_model_info;

/* One token row of the network ([CLS] <|source|> S [SEP] [CLS] <|candidate1|> A [SEP] [CLS] <|candidate2|> B
 * [SEP]) and the positions of its three prefix tokens. */
typedef struct pairrm_row {
  const int32_t* ids;
  size_t n_ids;
  int32_t source_pos, cand1_pos, cand2_pos;
} pairrm_row;

typedef struct pairrm_compare_result {
  double logit_ab, logit_ba; /* valid when has_ab / has_ba */
  int has_ab, has_ba;
  double score;              /* the value of the mode */
  int a_better;              /* score > 0 */
} pairrm_compare_result;

const char* pairrm_version(void);
const char* pairrm_last_error(void);

/* Loads a checkpoint directory (config.json, model.safetensors, spm.model, tokenizer files). params may be
 * NULL (the defaults). NULL on error. */
pairrm_model* pairrm_model_load(const char* directory, const pairrm_load_params* params);
void pairrm_model_free(pairrm_model* model); /* NULL is fine; contexts keep the model alive until freed */
int pairrm_model_info_get(const pairrm_model* model, pairrm_model_info* info);

/* threads <= 0: all hardware threads. NULL on error. */
pairrm_context* pairrm_context_new(const pairrm_model* model, int threads);
void pairrm_context_free(pairrm_context* ctx);

/* n comparisons: is candidates_a[i] better than candidates_b[i] as an answer to sources[i]? out[n]. */
int pairrm_compare(pairrm_context* ctx, const char* const* sources, const char* const* candidates_a,
                   const char* const* candidates_b, size_t n, pairrm_compare_mode mode, pairrm_compare_result* out);

/* llm-blender's rank of n candidates for one source: scores[n] (mean debiased pairwise logit) and ranks[n]
 * (1 = best, ties share the smallest rank). Either output may be NULL. */
int pairrm_rank(pairrm_context* ctx, const char* source, const char* const* candidates, size_t n, double* scores,
                int32_t* ranks);

/* The token row of one comparison with the model's truncation. Writes up to capacity ids; *n_ids is the
 * row's length (call with capacity 0 to size the buffer). Fails if capacity is non-zero and too small. */
int pairrm_build_row(const pairrm_model* model, const char* source, const char* candidate1,
                     const char* candidate2, int32_t* ids, size_t capacity, size_t* n_ids, int32_t prefix_pos[3]);

/* logit(candidate1 over candidate2) of each row: logits[n]. */
int pairrm_logits(pairrm_context* ctx, const pairrm_row* rows, size_t n, double* logits);

#ifdef __cplusplus
}
#endif

#endif /* PAIRRM_C_H */
