// The official openai npm package against the gateway: one Responses request and one chat
// stream. Prints one JSON line that tests/test_openai_node.py checks.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.GATEWAY_URL,
  apiKey: process.env.GATEWAY_KEY ?? "unused",
  maxRetries: 0,
});
const model = process.env.GATEWAY_MODEL;

const response = await client.responses.create({
  model,
  instructions: "Answer briefly.",
  input: "hello from node",
});

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "stream to node" }],
  stream: true,
});
let streamed = "";
let chunks = 0;
for await (const chunk of stream) {
  chunks += 1;
  streamed += chunk.choices[0]?.delta?.content ?? "";
}

const events = [];
const responseStream = client.responses.stream({ model, input: "events to node" });
for await (const event of responseStream) events.push(event.type);
const final = await responseStream.finalResponse();

console.log(JSON.stringify({
  response: { id: response.id, object: response.object, status: response.status,
              text: response.output_text, usage: response.usage },
  chat: { text: streamed, chunks },
  events, final: final.output_text,
}));
