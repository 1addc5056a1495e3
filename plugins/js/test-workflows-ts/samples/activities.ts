// The activity interface the hello-world sample types its proxy with (in
// the SDK sample the implementation lives here and runs in a Node worker;
// in Caisson it is the Rust greet-activity plugin). Never imported at run
// time: the workflow imports only its type.
export async function greet(name: string): Promise<string> {
  return `Hello, ${name}!`;
}
