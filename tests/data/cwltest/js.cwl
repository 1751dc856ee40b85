cwlVersion: v1.2
class: CommandLineTool
requirements:
  InlineJavascriptRequirement: {}
hints:
  DockerRequirement: {dockerPull: "faice-test-busybox:latest"}
baseCommand: echo
arguments: ["${ return 'hi'; }"]
stdout: out.txt
inputs: []
outputs:
  out: stdout
