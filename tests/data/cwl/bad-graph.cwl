cwlVersion: v1.2
$graph:
  main:
    class: CommandLineTool
