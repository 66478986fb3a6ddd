const socket = new WebSocket("ws://localhost:8000/ws/predict");

socket.onopen = function(e) {
  console.log("Connexion établie");
};

socket.onmessage = function(event) {
  const data = JSON.parse(event.data);
  
  if (data.status === "message") {
    console.log("Info:", data.message);
  } else if (data.status === "steps") {
    console.log(`Progression: ${data.step}/${data.total_step} - ${data.step_name}`);
    // Mettre à jour votre barre de progression ici
  } else if (data.status === "output") {
    console.log("Résultat Reçu:", data.payload);
    // Afficher les graphiques
  } else if (data.status === "error") {
    console.error("Erreur:", data.message);
  }
};

socket.onclose = function(event) {
  if (event.wasClean) {
    console.log(`Connexion fermée proprement`);
  } else {
    console.log('Connexion interrompue');
  }
};
