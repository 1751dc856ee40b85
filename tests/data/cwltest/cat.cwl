# A File input (a path relative to the job file) copied to stdout.
cwlVersion: v1.0
class: CommandLineTool
requirements:
  DockerRequirement:
    dockerPull: faice-test-busybox:latest
baseCommand: cat
inputs:
  f:
    type: File
    inputBinding: {position: 1}
outputs:
  copy:
    type: stdout
stdout: copy.txt
