cwlVersion: v1.1
class: CommandLineTool
baseCommand: [echo, -n]
hints:
  - class: DockerRequirement
    dockerImageId: faice-test-busybox:latest
  - class: SoftwareRequirement
    packages: [{package: coreutils}]
inputs:
  - id: words
    type: {type: array, items: string}
    inputBinding: {position: 1}
  - id: count
    type: ["null", int]
    default: 3
    inputBinding: {prefix: --count}
outputs:
  - id: said
    type: stdout
stdout: said.txt
