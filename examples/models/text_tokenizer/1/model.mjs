// A hashing word tokenizer: lower-cases, splits on non-letters, maps each word to an id in
// [1, vocabulary_size) with FNV-1a (0 is the padding id), and pads every sentence in the
// request to the longest one.
let vocabularySize = 4096;
let maxLength = 64;
const decoder = new TextDecoder();

export function load({ parameters }) {
  vocabularySize = Number(parameters.vocabulary_size ?? vocabularySize);
  maxLength = Number(parameters.max_length ?? maxLength);
}

function fnv1a(word) {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) {
    h ^= word.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export function predict({ text }) {
  const sentences = text.data.map((bytes) => decoder.decode(bytes).toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean).slice(0, maxLength));
  const length = Math.max(1, ...sentences.map((s) => s.length));
  const ids = new BigInt64Array(sentences.length * length);
  const mask = new BigInt64Array(sentences.length * length);
  sentences.forEach((words, row) => {
    words.forEach((word, i) => {
      ids[row * length + i] = BigInt(1 + (fnv1a(word) % (vocabularySize - 1)));
      mask[row * length + i] = 1n;
    });
  });
  const shape = [sentences.length, length];
  return {
    input_ids: { datatype: 'INT64', shape, data: ids },
    attention_mask: { datatype: 'INT64', shape, data: mask },
  };
}
