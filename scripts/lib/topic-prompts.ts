// Short story prompts on separate topics, in TinyStories words (so stories260K knows them):
// a template and topic words drawn from a seed. Used by bench:router and the router tests.

export const TOPIC_WORDS = {
  dog: ["dog", "puppy", "ball", "park", "bark", "bone", "run", "tail"],
  castle: ["princess", "castle", "king", "queen", "crown", "dragon", "knight", "prince"],
  sea: ["fish", "sea", "boat", "water", "wave", "sand", "shell", "swim"],
  food: ["cake", "cookie", "apple", "soup", "bread", "eat", "milk", "candy"],
  weather: ["rain", "sun", "cloud", "snow", "wind", "storm", "sky", "cold"],
  school: ["teacher", "book", "read", "class", "school", "write", "pencil", "friend"],
  garden: ["flower", "tree", "bird", "bee", "grass", "leaf", "seed", "garden"],
  toys: ["car", "truck", "toy", "train", "doll", "block", "robot", "kite"],
} as const;
export type TopicName = keyof typeof TOPIC_WORDS;
export const TOPIC_NAMES = Object.keys(TOPIC_WORDS) as TopicName[];

const TEMPLATES = [
  (w: string[]) => `The ${w[0]} and the ${w[1]} went to see the ${w[2]}. The ${w[3]} liked the ${w[4]}.`,
  (w: string[]) => `One day a ${w[0]} found a ${w[1]} near the ${w[2]}.`,
  (w: string[]) => `Lily saw a ${w[0]}. She told her mom about the ${w[1]}, the ${w[2]} and the ${w[3]}.`,
  (w: string[]) => `Tom wanted to play with the ${w[0]}. He ran to the ${w[1]} with his ${w[2]}.`,
  (w: string[]) => `There was a big ${w[0]} and a little ${w[1]}. They loved the ${w[2]} and the ${w[3]} very much.`,
  (w: string[]) => `"Look at the ${w[0]}!" said the ${w[1]}. The ${w[2]} was happy.`,
];

/** A prompt about `topic`; distinct seeds give distinct prompts but for rare repeats. */
export function topicPrompt(topic: TopicName, seed: number): string {
  let h = (seed + 1) * 0x9e3779b1 + topic.length * 0x85ebca6b + topic.charCodeAt(0) * 0x27d4eb2f;
  const next = () => {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + 0x6d2b79f5;
    return ((h ^ (h >>> 13)) >>> 0) / 2 ** 32;
  };
  const w = TOPIC_WORDS[topic];
  const words = Array.from({ length: 5 }, () => w[Math.floor(next() * w.length)]);
  return TEMPLATES[Math.floor(next() * TEMPLATES.length)](words);
}

export function topicPrompts(topic: TopicName, from: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => topicPrompt(topic, from + i));
}
