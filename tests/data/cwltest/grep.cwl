# A File input and a string counted by grep -c; an optional output that no glob finds is null.
cwlVersion: v1.1
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPull: faice-test-busybox:latest
baseCommand: [grep, -c]
inputs:
  pattern:
    type: string
    default: e
    inputBinding: {position: 1}
  f:
    type: File
    inputBinding: {position: 2}
outputs:
  count:
    type: stdout
  missing:
    type: File?
    outputBinding:
      glob: not-written.txt
stdout: count.txt
