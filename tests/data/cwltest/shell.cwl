# ShellCommandRequirement: a pipe, unquoted; the value of an input quoted.
cwlVersion: v1.2
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPull: faice-test-busybox:latest
  ShellCommandRequirement: {}
inputs:
  words:
    type: string
    inputBinding: {position: 1, prefix: echo}
arguments:
  - {position: 2, valueFrom: "| wc -w > count.txt", shellQuote: false}
outputs:
  count:
    type: File
    outputBinding:
      glob: count.txt
